"""Executors: where the windows of a rolling run are forecast (this process, or Ray actors).

An executor only maps batches of windows to forecast rows. ``engine.run_rolling`` plans the
windows, looks them up in the cache and hands the rest to ``Executor.map_batches`` as a
``RollingWork``; the executor forecasts them and passes each finished ``Batch`` with its rows to
``deliver`` (which checks, caches and collects them). ``LocalExecutor`` runs batches of
``spec.batch_series`` windows one after another; ``distributed.RayExecutor`` runs shards on
Ray actors. Batches are ordered by ``make_batches`` (longest windows first, to limit padding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import polars as pl

from kronos_quant.data.arrays import PanelArrays
from kronos_quant.engine.spec import RollingSpec
from kronos_quant.engine.table import forecast_batch
from kronos_quant.engine.windows import Window, WorkItem
from kronos_quant.schema import Forecaster

__all__ = ["Batch", "Deliver", "Executor", "LocalExecutor", "RollingWork", "make_batches"]


@dataclass(frozen=True)
class Batch:
    """Windows forecast together (one forecaster call locally, one shard on Ray); ``keys[i]`` is
    the cache key of ``windows[i]`` (empty without a cache)."""

    index: int
    windows: tuple[Window, ...]
    keys: tuple[str, ...] = ()

    @property
    def items(self) -> tuple[WorkItem, ...]:
        return tuple(w.item for w in self.windows)

    @property
    def n_forecasts(self) -> int:
        return len(self.windows)


def make_batches(windows: Sequence[Window], keys: Sequence[str], *, size: int) -> list[Batch]:
    """Cut ``windows`` into batches of at most ``size``, ordered by (longest window first, as-of,
    instrument): similar lengths share a batch (little padding), and the batches of any size
    that is a multiple of another's are unions of consecutive smaller batches."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    if keys and len(keys) != len(windows):
        raise ValueError(f"got {len(keys)} cache keys for {len(windows)} windows")
    order = sorted(range(len(windows)),
                   key=lambda i: (-windows[i].item.length, windows[i].item.asof_ns, windows[i].item.instrument))
    batches = []
    for n, lo in enumerate(range(0, len(order), size)):
        idx = order[lo:lo + size]
        batches.append(Batch(n, tuple(windows[i] for i in idx), tuple(keys[i] for i in idx) if keys else ()))
    return batches


@dataclass(frozen=True)
class RollingWork:
    """What an executor computes: the windows of a run not found in the cache, their cache keys
    (empty without a cache), the panel arrays they were cut from, the spec and the forecaster.
    ``cached`` says whether finished batches go to a forecast cache (for error messages)."""

    spec: RollingSpec
    data: PanelArrays
    forecaster: Forecaster
    windows: tuple[Window, ...]
    keys: tuple[str, ...]
    cached: bool = False


Deliver = Callable[[Batch, pl.DataFrame], None]


@runtime_checkable
class Executor(Protocol):
    """Maps the windows of a ``RollingWork`` to forecast rows."""

    def map_batches(self, work: RollingWork, deliver: Deliver) -> None:
        """Forecast every window of ``work``; call ``deliver(batch, rows)`` on the calling thread
        for each finished batch, with its B * H rows (Int64 times) in the order of ``batch.windows``.
        Raise after delivering what finished when some windows could not be forecast."""
        ...


@dataclass(frozen=True)
class LocalExecutor:
    """Forecast in this process, ``spec.batch_series`` windows per forecaster call."""

    def map_batches(self, work: RollingWork, deliver: Deliver) -> None:
        for batch in make_batches(work.windows, work.keys, size=work.spec.batch_series):
            deliver(batch, forecast_batch(batch.windows, work.forecaster, work.spec))
