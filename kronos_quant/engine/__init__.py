"""The rolling forecast engine: windows over dates x instruments -> batches -> forecast table.

The engine knows nothing about tokenization or torch; it calls any ``schema.Forecaster``.
Building blocks for a distributed backend: ``plan_windows`` (work items), ``build_windows`` +
``forecast_batch`` (one batch), ``config_key``/``window_key`` + ``ForecastCache`` (caching) and
``finalize_table`` (Int64 times -> the panel's Datetime type, sorted rows).
"""

from kronos_quant.engine.cache import CacheStats, ForecastCache, config_key, window_key
from kronos_quant.engine.rolling import (
    cache_description,
    finalize_table,
    forecast_batch,
    forecast_columns,
    rolling_forecast,
    split_cached,
)
from kronos_quant.engine.windows import (
    PanelArrays,
    Window,
    WorkItem,
    build_windows,
    plan_windows,
    prepare_panel,
    series_seed,
)

__all__ = [
    "CacheStats",
    "ForecastCache",
    "PanelArrays",
    "Window",
    "WorkItem",
    "build_windows",
    "cache_description",
    "config_key",
    "finalize_table",
    "forecast_batch",
    "forecast_columns",
    "plan_windows",
    "prepare_panel",
    "rolling_forecast",
    "split_cached",
    "series_seed",
    "window_key",
]
