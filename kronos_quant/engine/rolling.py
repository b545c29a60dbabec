"""``run_rolling``: one rolling forecast run -> the tidy forecast table, on any executor.

The one loop of a rolling run: plan work items (``windows.plan_windows``), cut their windows,
skip those already in the forecast cache, hand the rest to the executor (``LocalExecutor`` here,
``distributed.RayExecutor`` on Ray actors), check and cache each finished batch as it arrives
and assemble the table (``table.finalize_table``). Planning, cache lookup and store, and the
table layout exist only here, so both executors give the same table for the same inputs.

The engine knows nothing about tokenization, torch or any model: it talks to any object that
satisfies ``schema.Forecaster``.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import numpy as np
import polars as pl

from kronos_quant.data.arrays import PanelArrays, panel_arrays
from kronos_quant.data.calendar import BarCalendar
from kronos_quant.engine.cache import KEY_COLUMN, ForecastCache, window_key
from kronos_quant.engine.executor import Batch, Executor, LocalExecutor, RollingWork
from kronos_quant.engine.spec import RollingSpec
from kronos_quant.engine.table import empty_rows, finalize_table
from kronos_quant.engine.windows import RollingPlan, Window, build_windows, plan_rolling
from kronos_quant.schema import Forecaster
from kronos_quant.utils.progress import make_progress

__all__ = ["run_rolling", "rolling_forecast", "split_cached"]

logger = logging.getLogger(__name__)


def split_cached(windows: list[Window], cache: ForecastCache | None, config: str
                 ) -> tuple[pl.DataFrame | None, list[Window], list[str]]:
    """Look ``windows`` up in ``cache``: (cached rows or None, windows still to compute, their cache keys).

    Without a cache every window is still to compute and there are no keys.
    """
    if cache is None or not windows:
        return None, list(windows), []
    keys = [window_key(config, w.series, w.past_ns, w.past_stamps, w.target_ns, w.future_stamps, w.seed)
            for w in windows]
    hits = cache.lookup(config, keys)
    found = cache.contains(config, keys)
    todo = [w for w, f in zip(windows, found) if not f]
    return hits, todo, [k for k, f in zip(keys, found) if not f]


class _CacheWriter:
    """Stores finished batches into the cache on one background thread, at most one write pending.

    A failed write is raised at the next ``submit`` or on leaving the block; pending writes finish
    even when the block raises, so an interrupted run keeps every batch it delivered.
    """

    def __init__(self, cache: ForecastCache | None, config: str, description: dict[str, Any]) -> None:
        self.cache, self.config, self.description = cache, config, description
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kq-cache") if cache is not None else None
        self.pending: Future[Any] | None = None

    def submit(self, rows: pl.DataFrame) -> None:
        if self.cache is None or self.pool is None:
            return
        if self.pending is not None:
            self.pending.result()
        self.pending = self.pool.submit(self.cache.store, self.config, rows, description=self.description)

    def __enter__(self) -> _CacheWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.pool is None:
            return
        self.pool.shutdown(wait=True)
        if exc_type is None and self.pending is not None:
            self.pending.result()


def _checked_rows(rows: pl.DataFrame, batch: Batch, horizon: int) -> pl.DataFrame:
    """The rows of a finished batch, checked against its items, with the cache keys attached."""
    expected = np.repeat([w.item.instrument for w in batch.windows], horizon)
    if rows.height != expected.size or not np.array_equal(rows["instrument"].to_numpy(), expected):
        raise RuntimeError(f"batch {batch.index}: the executor returned {rows.height} rows that do not match its "
                           f"{batch.n_forecasts} work items x horizon {horizon}")
    if batch.keys:
        rows = rows.with_columns(pl.Series(KEY_COLUMN, np.repeat(batch.keys, horizon)))
    return rows


def run_rolling(spec: RollingSpec, panel: pl.DataFrame | PanelArrays, forecaster: Forecaster,
                executor: Executor | None = None, *, cache: ForecastCache | str | os.PathLike[str] | None = None,
                quiet: bool | None = None, plan: RollingPlan | None = None) -> pl.DataFrame:
    """Forecast every (instrument, as-of) of ``spec``'s rolling schedule; returns the forecast table.

    panel: long frame with ``schema.PANEL_COLUMNS`` or its ``data.arrays.panel_arrays`` (build
    those with ``calendar=`` to extend target timestamps past the last bar on a known calendar;
    default: inferred; with ``breaks=`` no window spans a history break). Each forecast as of bar
    t sees only the last ``spec.lookback`` bars up to and including t (see ``plan_windows``).
    forecaster: its ``identity`` keys the cache.
    executor: ``LocalExecutor()`` (default) or ``distributed.RayExecutor``; the table does not
    depend on it, nor on batch sizes or on what is cached (seeds are per seed, instrument, as-of).
    cache: a ForecastCache or a directory; only missing forecasts are computed, and each finished
    batch is written to its own file as it arrives (on a background thread), so a killed run
    loses at most the batches in flight and a rerun resumes. The executor is not called when
    every forecast is cached. plan: ``plan_rolling(panel, spec)`` when the caller made it already
    (to read its counts); default: planned here.

    Returns one row per instrument x as-of x step, sorted, with the columns of
    ``forecast_columns(spec.quantile_levels, keep_samples=spec.keep_samples)``; prices in the
    panel's units, times in the panel's time zone and unit.
    """
    if not isinstance(forecaster, Forecaster):
        raise TypeError(f"forecaster must satisfy kronos_quant.schema.Forecaster, got {type(forecaster).__name__}")
    executor = LocalExecutor() if executor is None else executor
    data = panel if isinstance(panel, PanelArrays) else panel_arrays(panel)
    windows = build_windows(data, (plan_rolling(data, spec) if plan is None else plan).items, spec)
    if isinstance(cache, (str, os.PathLike)):
        cache = ForecastCache(cache)
    identity = forecaster.identity
    config = spec.cache_config(identity)
    hits, todo, keys = split_cached(windows, cache, config)
    parts: list[pl.DataFrame] = [empty_rows(spec)] if hits is None else [hits]
    n_batches = 0
    with make_progress(len(windows), "forecasts", quiet=quiet, unit="series", initial=len(windows) - len(todo)) as bar, \
            _CacheWriter(cache, config, spec.cache_description(identity)) as writer:

        def deliver(batch: Batch, rows: pl.DataFrame) -> None:
            nonlocal n_batches
            rows = _checked_rows(rows, batch, spec.horizon)
            writer.submit(rows)
            parts.append(rows)
            n_batches += 1
            bar.update(batch.n_forecasts)

        if todo:
            work = RollingWork(spec, data, forecaster, tuple(todo), tuple(keys), cached=cache is not None)
            executor.map_batches(work, deliver)
    logger.info("rolling forecast of %s (%s): %d series (%d cached, %d computed in %d batches)",
                identity.get("forecaster") or identity.get("model_id") or "?", type(executor).__name__,
                len(windows), len(windows) - len(todo), len(todo), n_batches)
    rows = pl.concat([p.drop(KEY_COLUMN) if KEY_COLUMN in p.columns else p for p in parts], how="vertical_relaxed")
    return finalize_table(rows, time_zone=data.time_zone, time_unit=data.time_unit)


def rolling_forecast(panel: pl.DataFrame | PanelArrays, forecaster: Forecaster, *,
                     cache: ForecastCache | str | os.PathLike[str] | None = None, calendar: BarCalendar | None = None,
                     quiet: bool | None = None, **spec: Any) -> pl.DataFrame:
    """``run_rolling`` in this process: ``rolling_forecast(panel, forecaster, lookback=64, horizon=5)``.

    spec: the fields of ``RollingSpec`` (lookback, horizon, rebalance, min_history, start, end,
    sampling, quantile_levels, keep_samples, batch_series). calendar: the bar calendar that
    extends target timestamps past the last bar (default: inferred from the panel; arrays passed
    as ``panel`` keep the calendar they were built with).
    """
    if calendar is not None and not isinstance(panel, PanelArrays):
        panel = panel_arrays(panel, calendar=calendar)
    return run_rolling(RollingSpec(**spec), panel, forecaster, cache=cache, quiet=quiet)
