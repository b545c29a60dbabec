"""Distributed execution of the rolling forecast engine (the ``ray`` backend).

``ray_rolling_forecast(panel, cfg, ...)`` is what ``workflow.forecast_table`` calls when
``forecast.backend: ray``; ``distributed_rolling_forecast(panel, make_forecaster, ..., options=RayOptions(...))``
is the config-free form. Work items are planned, cached and assembled by ``kronos_quant.engine``
exactly as in the local backend; only the model work moves to Ray actors.

Importing this package never needs Ray; running it without Ray raises a ConfigError that says
``pip install "kronos-quant[ray]"``.
"""

from kronos_quant.distributed.from_config import forecaster_factory, ray_options, ray_rolling_forecast
from kronos_quant.distributed.ray_backend import distributed_rolling_forecast
from kronos_quant.distributed.ray_setup import (
    INSTALL_HINT,
    RayOptions,
    ensure_ray,
    import_ray,
    worker_resources,
)
from kronos_quant.distributed.shards import (
    DistributedForecastError,
    Shard,
    ShardFailure,
    ShardLedger,
    describe_items,
    make_shards,
)
from kronos_quant.distributed.workers import ShardWorker, WorkerPool

__all__ = [
    "INSTALL_HINT",
    "DistributedForecastError",
    "RayOptions",
    "Shard",
    "ShardFailure",
    "ShardLedger",
    "ShardWorker",
    "describe_items",
    "distributed_rolling_forecast",
    "ensure_ray",
    "forecaster_factory",
    "import_ray",
    "make_shards",
    "ray_options",
    "ray_rolling_forecast",
    "worker_resources",
    "WorkerPool",
]
