"""The rolling forecast engine: windows over dates x instruments -> batches -> forecast table.

``run_rolling(spec, panel, forecaster, executor)`` is the one rolling run: ``RollingSpec`` says
what is forecast, the executor (``LocalExecutor`` or ``distributed.RayExecutor``) only maps
batches of windows to rows; planning (``plan_windows``, ``build_windows``), the forecast cache
(``ForecastCache``) and the table (``forecast_batch``, ``finalize_table``) live here once.
``rolling_forecast(panel, forecaster, lookback=..., horizon=...)`` is the local shorthand.
The engine knows nothing about tokenization or torch; it calls any ``schema.Forecaster``.
"""

from kronos_quant.engine.cache import CacheStats, ForecastCache, config_key, window_key
from kronos_quant.engine.executor import Batch, Deliver, Executor, LocalExecutor, RollingWork, make_batches
from kronos_quant.engine.rolling import rolling_forecast, run_rolling, split_cached
from kronos_quant.engine.spec import RollingSpec
from kronos_quant.engine.table import (
    empty_rows,
    finalize_table,
    forecast_batch,
    forecast_columns,
    forecast_items,
)
from kronos_quant.engine.windows import (
    RollingPlan,
    Window,
    WorkItem,
    build_windows,
    plan_rolling,
    plan_windows,
    series_seed,
)

__all__ = [
    "Batch",
    "CacheStats",
    "Deliver",
    "Executor",
    "ForecastCache",
    "LocalExecutor",
    "RollingPlan",
    "RollingSpec",
    "RollingWork",
    "Window",
    "WorkItem",
    "build_windows",
    "config_key",
    "empty_rows",
    "finalize_table",
    "forecast_batch",
    "forecast_columns",
    "forecast_items",
    "make_batches",
    "plan_rolling",
    "plan_windows",
    "rolling_forecast",
    "run_rolling",
    "series_seed",
    "split_cached",
    "window_key",
]
