"""The Ray executor of a strategy config: what ``workflow.forecast_table`` uses for ``backend: ray``.

Owns: turning ``cfg.model`` into a picklable forecaster factory for the actors, and
``cfg.forecast`` (ray_address, num_workers) plus the model's device into ``RayOptions``.
Knows nothing about how shards are scheduled (``ray_backend``) or how forecasts are made (engine).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from kronos_quant.distributed.ray_backend import RayExecutor
from kronos_quant.distributed.ray_setup import RayOptions
from kronos_quant.forecasters import forecaster_from_config
from kronos_quant.schema import Forecaster

__all__ = ["forecaster_factory", "ray_executor", "ray_options"]


def _uses_gpu(model: Any) -> bool:
    """Whether the model should get a whole GPU per actor when the cluster has GPUs."""
    device = (model.device or "auto").lower()
    return not model.id.startswith("baseline:") and (device == "auto" or device.startswith("cuda"))


def forecaster_factory(model: Any) -> Callable[[], Forecaster]:
    """A picklable zero-argument callable building ``cfg.model``'s forecaster (Kronos is loaded lazily,
    on the first forecast). A ``cuda:N`` device becomes ``cuda``: Ray shows each actor only its own GPU."""
    device = model.device
    if device is not None and device.lower().startswith("cuda:"):
        device = "cuda"
    return functools.partial(forecaster_from_config, model, device=device)


def ray_options(cfg: Any, **overrides: Any) -> RayOptions:
    """``RayOptions`` from ``cfg.forecast.ray_address`` / ``num_workers``; Kronos models on an
    ``auto``/``cuda`` device take one whole GPU per actor when the cluster has GPUs."""
    f = cfg.forecast
    base: dict[str, Any] = {"address": f.ray_address, "num_workers": f.num_workers,
                            "num_gpus_per_worker": None if _uses_gpu(cfg.model) else 0.0}
    base.update(overrides)
    return RayOptions(**base)


def ray_executor(cfg: Any, **overrides: Any) -> RayExecutor:
    """The Ray executor of a strategy config: ``ray_options(cfg, **overrides)`` and actors that build
    ``cfg.model``'s forecaster themselves (``forecaster_factory``)."""
    return RayExecutor(ray_options(cfg, **overrides), factory=forecaster_factory(cfg.model))
