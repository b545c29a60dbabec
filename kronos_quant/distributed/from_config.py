"""The Ray backend driven by a strategy config: what ``workflow.forecast_table`` calls.

Owns: turning ``cfg.model`` into a picklable forecaster factory for the actors, and
``cfg.forecast`` (ray_address, num_workers) plus the model's device into ``RayOptions``.
Knows nothing about how shards are scheduled (``ray_backend``) or how forecasts are made (engine).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from kronos_quant.data.calendar import BarCalendar
from kronos_quant.distributed.ray_backend import distributed_rolling_forecast
from kronos_quant.distributed.ray_setup import RayOptions
from kronos_quant.engine import ForecastCache, PanelArrays
from kronos_quant.forecasters import build_forecaster
from kronos_quant.schema import DEFAULT_QUANTILES, Forecaster, SamplingSpec

__all__ = ["forecaster_factory", "ray_options", "ray_rolling_forecast"]


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
    return functools.partial(build_forecaster, model.id, tokenizer=model.tokenizer, revision=model.revision,
                             tokenizer_revision=model.tokenizer_revision, device=device, dtype=model.dtype,
                             max_context=model.max_context, local_files_only=model.local_files_only)


def ray_options(cfg: Any, **overrides: Any) -> RayOptions:
    """``RayOptions`` from ``cfg.forecast.ray_address`` / ``num_workers``; Kronos models on an
    ``auto``/``cuda`` device take one whole GPU per actor when the cluster has GPUs."""
    f = cfg.forecast
    base: dict[str, Any] = {"address": f.ray_address, "num_workers": f.num_workers,
                            "num_gpus_per_worker": None if _uses_gpu(cfg.model) else 0.0}
    base.update(overrides)
    return RayOptions(**base)


def ray_rolling_forecast(
    panel: pl.DataFrame | PanelArrays,
    cfg: Any,
    *,
    lookback: int,
    horizon: int,
    rebalance: int | Sequence[Any] = 1,
    min_history: int | None = None,
    start: Any = None,
    end: Any = None,
    sampling: SamplingSpec | None = None,
    quantile_levels: Sequence[float] = DEFAULT_QUANTILES,
    keep_samples: bool = False,
    cache: ForecastCache | str | os.PathLike[str] | None = None,
    max_batch_series: int = 128,
    calendar: BarCalendar | None = None,
    quiet: bool | None = None,
    options: RayOptions | None = None,
) -> pl.DataFrame:
    """Rolling forecasts of ``cfg.model`` on Ray (see ``distributed_rolling_forecast``).

    cfg: a ``kronos_quant.config.StrategyConfig``; ``cfg.forecast.ray_address`` (None = a local
    Ray instance, ``"auto"`` / ``"ray://host:port"`` = a cluster) and ``cfg.forecast.num_workers``
    choose where it runs (``options`` overrides them). Returns the same table as the local backend.
    """
    return distributed_rolling_forecast(
        panel, forecaster_factory(cfg.model), lookback=lookback, horizon=horizon, rebalance=rebalance,
        min_history=min_history, start=start, end=end, sampling=sampling, quantile_levels=quantile_levels,
        keep_samples=keep_samples, cache=cache, max_batch_series=max_batch_series, calendar=calendar, quiet=quiet,
        options=options or ray_options(cfg))
