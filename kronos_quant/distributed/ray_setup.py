"""Starting or joining Ray, and sizing the actors of a run.

Owns: the ``RayOptions`` of a run, importing Ray lazily with an install hint (``import_ray``),
starting a local instance or joining a cluster (``ensure_ray``), and fitting the number of
workers and their CPUs/GPUs to the cluster (``worker_resources``).
Knows nothing about shards, forecasters or the forecast table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kronos_quant.errors import ConfigError

__all__ = ["INSTALL_HINT", "RayOptions", "import_ray", "ensure_ray", "worker_resources"]

logger = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "kronos-quant[ray]"'


@dataclass(frozen=True)
class RayOptions:
    """Where and how shards run.

    address: None starts a local Ray instance (or uses the one this process already started);
    ``"auto"`` or ``"ray://host:port"`` joins a cluster. num_workers: actors, each holding one
    forecaster. shard_size: forecasts per shard (default: the batch size, so a shard is one
    batch). max_retries: extra attempts of a failed shard (on another or a replacement actor).
    max_worker_restarts: replacement actors in all (default 2 * num_workers).
    num_gpus_per_worker: GPUs per actor (None: 1 when the cluster has a GPU, else 0).
    num_cpus_per_worker: CPUs per actor (default: 1 with a GPU, else the cluster's CPUs split
    evenly). max_in_flight_per_worker: shards queued on an actor at once (2 keeps it busy while
    the driver stores the previous one). runtime_env: passed to ``ray.init`` when this call starts
    or joins Ray (e.g. to ship the package to a cluster).
    """

    address: str | None = None
    num_workers: int = 2
    shard_size: int | None = None
    max_retries: int = 2
    max_worker_restarts: int | None = None
    num_gpus_per_worker: float | None = 0.0
    num_cpus_per_worker: float | None = None
    max_in_flight_per_worker: int = 2
    runtime_env: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("num_workers", "max_in_flight_per_worker"):
            if getattr(self, name) < 1:
                raise ValueError(f"RayOptions.{name} must be >= 1, got {getattr(self, name)}")
        if self.shard_size is not None and self.shard_size < 1:
            raise ValueError(f"RayOptions.shard_size must be >= 1, got {self.shard_size}")
        if self.max_retries < 0:
            raise ValueError(f"RayOptions.max_retries must be >= 0, got {self.max_retries}")
        if self.max_worker_restarts is not None and self.max_worker_restarts < 0:
            raise ValueError(f"RayOptions.max_worker_restarts must be >= 0, got {self.max_worker_restarts}")
        for name in ("num_gpus_per_worker", "num_cpus_per_worker"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"RayOptions.{name} must be >= 0, got {value}")


def import_ray() -> Any:
    """The ``ray`` module, or a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            f'forecast.backend "ray" needs Ray, which is not installed: {INSTALL_HINT} '
            "(or set forecast.backend=local)"
        ) from exc
    return ray


def ensure_ray(address: str | None = None, *, runtime_env: dict[str, Any] | None = None) -> Any:
    """Start a local Ray instance (``address=None``) or join a cluster, unless Ray is already
    initialised in this process (then that instance is used as is). Returns the ``ray`` module."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"address": address, "logging_level": logging.WARNING}
    if runtime_env is not None:
        kwargs["runtime_env"] = runtime_env
    if address is None:
        kwargs["include_dashboard"] = False
    logger.info("ray: %s", "starting a local instance" if address is None else f"joining {address}")
    try:
        ray.init(**kwargs)
    except ValueError as exc:
        if address is not None and address.startswith("ray://") and "ray[client]" in str(exc):
            raise ConfigError(f'forecast.ray_address={address!r} needs the Ray Client: pip install "ray[client]" '
                              "(or run on a cluster node with forecast.ray_address=auto)") from exc
        raise
    except (ConnectionError, SystemExit) as exc:  # Ray calls sys.exit when a GCS address times out
        if address is None:
            raise
        raise ConfigError(
            f"forecast.ray_address={address!r}: cannot reach a Ray cluster ({exc}); start one "
            "(`ray start --head`) or unset forecast.ray_address to run a local instance"
        ) from exc
    return ray


def worker_resources(ray: Any, options: RayOptions, n_workers: int) -> tuple[int, dict[str, float]]:
    """(number of workers, per-actor resources) fitted to the cluster's current resources."""
    total = ray.cluster_resources()
    n_gpus = float(total.get("GPU", 0.0))
    gpus = options.num_gpus_per_worker
    if gpus is None:
        gpus = 1.0 if n_gpus >= 1 else 0.0
    if gpus > 0:
        fit = int(n_gpus // gpus)
        if fit == 0:
            raise ConfigError(f"each Ray worker asks for {gpus:g} GPU(s) but the Ray cluster has {n_gpus:g}; "
                              "set model.device=cpu or join a cluster with GPUs (forecast.ray_address)")
        if fit < n_workers:
            logger.warning("forecast.num_workers=%d but the Ray cluster has GPUs for %d workers; using %d",
                           n_workers, fit, fit)
            n_workers = fit
    cpus = options.num_cpus_per_worker
    if cpus is None:
        per = float(total.get("CPU", 1.0)) / n_workers
        cpus = 1.0 if gpus > 0 else (float(max(1, int(per))) if per >= 1 else per)
    return n_workers, {"num_cpus": cpus, "num_gpus": gpus}
