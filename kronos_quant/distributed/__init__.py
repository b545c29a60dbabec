"""Distributed execution of the rolling forecast engine (the ``ray`` backend).

``engine.run_rolling(spec, panel, forecaster, RayExecutor(RayOptions(...)))`` runs the model work
on Ray actors; ``ray_executor(cfg)`` is the executor ``workflow.forecast_table`` uses when
``forecast.backend: ray``. Work items are planned, cached and assembled by ``kronos_quant.engine``
exactly as with the local executor; only the model work moves to Ray actors.

Importing this package never needs Ray; running it without Ray raises a ConfigError that says
``pip install "kronos-quant[ray]"``.
"""

from kronos_quant.distributed.from_config import forecaster_factory, ray_executor, ray_options
from kronos_quant.distributed.ray_backend import RayExecutor
from kronos_quant.distributed.ray_setup import (
    INSTALL_HINT,
    RayOptions,
    ensure_ray,
    import_ray,
    worker_resources,
)
from kronos_quant.distributed.shards import (
    DistributedForecastError,
    ShardFailure,
    ShardLedger,
    describe_items,
)
from kronos_quant.distributed.workers import ShardWorker, WorkerPool

__all__ = [
    "INSTALL_HINT",
    "DistributedForecastError",
    "RayExecutor",
    "RayOptions",
    "ShardFailure",
    "ShardLedger",
    "ShardWorker",
    "WorkerPool",
    "describe_items",
    "ensure_ray",
    "forecaster_factory",
    "import_ray",
    "ray_executor",
    "ray_options",
    "worker_resources",
]
