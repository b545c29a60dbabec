"""The driver of the Ray backend: plan, look up the cache, run shards on actors, store, assemble.

Owns: ``distributed_rolling_forecast`` -- the loop that ships the panel arrays to the object store
once, hands shards to the actor pool (``workers``), retries failed shards on other or replacement
actors (bookkeeping in ``shards.ShardLedger``), stores each finished shard into the forecast cache
*on the driver* as it arrives (so a killed run resumes where it stopped) and names the shards that
failed for good.

Planning, windows, batches, seeds, cache keys and the table layout belong to ``kronos_quant.engine``;
this module only decides where shards run. Because seeds are per (seed, instrument, as-of) and
shards hold the local engine's batches, the table equals ``rolling_forecast``'s for the same
inputs. Ray is imported lazily: importing this module never needs it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from kronos_quant.data.calendar import BarCalendar
from kronos_quant.distributed.ray_setup import RayOptions, ensure_ray, worker_resources
from kronos_quant.distributed.shards import DistributedForecastError, Shard, ShardLedger, make_shards
from kronos_quant.distributed.workers import RunSettings, Slot, WorkerPool, error_text, init_failed
from kronos_quant.engine import (
    ForecastCache,
    PanelArrays,
    build_windows,
    cache_description,
    config_key,
    finalize_table,
    forecast_columns,
    plan_windows,
    prepare_panel,
    rolling_forecast,
    split_cached,
)
from kronos_quant.engine.cache import KEY_COLUMN
from kronos_quant.schema import DEFAULT_QUANTILES, Forecaster, SamplingSpec
from kronos_quant.utils.progress import make_progress

__all__ = ["distributed_rolling_forecast"]

logger = logging.getLogger(__name__)


def _levels(quantile_levels: Sequence[float]) -> tuple[float, ...]:
    levels = tuple(float(q) for q in quantile_levels)
    forecast_columns(levels)  # raises ValueError for levels outside (0, 1)
    if len(set(levels)) != len(levels):
        raise ValueError(f"quantile_levels must be distinct, got {levels}")
    return levels


def _checked_rows(rows: pl.DataFrame, shard: Shard, horizon: int) -> pl.DataFrame:
    """The rows of a finished shard, checked against its items, with the cache keys attached."""
    expected = np.repeat([it.instrument for it in shard.items], horizon)
    if rows.height != expected.size or not np.array_equal(rows["instrument"].to_numpy(), expected):
        raise RuntimeError(f"shard {shard.index}: a worker returned {rows.height} rows that do not match its "
                           f"{shard.n_forecasts} work items x horizon {horizon}")
    if shard.keys:
        rows = rows.with_columns(pl.Series(KEY_COLUMN, np.repeat(shard.keys, horizon)))
    return rows


def distributed_rolling_forecast(
    panel: pl.DataFrame | PanelArrays,
    make_forecaster: Callable[[], Forecaster],
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
    """``engine.rolling_forecast`` with the model work spread over Ray actors; same arguments and table.

    make_forecaster: a picklable zero-argument callable returning a ``schema.Forecaster``; it is
    called once on the driver (for the cache identity; a Kronos forecaster is not loaded there)
    and once in each actor. The driver plans the windows, looks them up in ``cache`` and starts
    Ray only when something is missing; shards of the missing windows run on
    ``options.num_workers`` actors and each finished shard is stored into the cache on arrival.
    A failed shard is retried up to ``options.max_retries`` times; shards that still fail are
    named in a ``DistributedForecastError`` raised after every other shard has finished.

    Returns one row per instrument x as-of x step, sorted, with the columns of
    ``forecast_columns(quantile_levels, keep_samples=keep_samples)``, equal to the local backend's.
    """
    options = options or RayOptions()
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if max_batch_series < 1:
        raise ValueError(f"max_batch_series must be >= 1, got {max_batch_series}")
    sampling = SamplingSpec() if sampling is None else sampling
    levels = _levels(quantile_levels)
    data = panel if isinstance(panel, PanelArrays) else prepare_panel(panel, calendar=calendar)
    forecaster = make_forecaster()
    if not isinstance(forecaster, Forecaster):
        raise TypeError(f"make_forecaster must return a kronos_quant.schema.Forecaster, got {type(forecaster).__name__}")
    if isinstance(cache, (str, os.PathLike)):
        cache = ForecastCache(cache)
    common = dict(lookback=lookback, horizon=horizon, rebalance=rebalance, min_history=min_history, start=start,
                  end=end, sampling=sampling, quantile_levels=levels, keep_samples=keep_samples, cache=cache,
                  max_batch_series=max_batch_series, quiet=quiet)
    items = plan_windows(data, lookback=lookback, rebalance=rebalance, min_history=min_history, start=start, end=end)
    if not items:  # nothing to forecast: the local engine returns the empty table
        return rolling_forecast(data, forecaster, **common)  # type: ignore[arg-type]
    windows = build_windows(data, items, horizon=horizon, base_seed=sampling.seed)  # also fixes the calendar
    config = config_key(forecaster.identity, sampling, horizon=horizon, quantile_levels=levels,
                        keep_samples=keep_samples)
    hits, todo, keys = split_cached(windows, cache, config)
    parts: list[pl.DataFrame] = [] if hits is None else [hits]
    description = cache_description(forecaster.identity, sampling, horizon=horizon, quantile_levels=levels,
                                    keep_samples=keep_samples)
    settings = RunSettings(horizon, sampling, levels, keep_samples, max_batch_series)
    with make_progress(len(windows), "forecasts", quiet=quiet, unit="series") as bar:
        bar.update(len(windows) - len(todo))

        def deliver(shard: Shard, rows: pl.DataFrame) -> None:
            rows = _checked_rows(rows, shard, horizon)
            if cache is not None:
                cache.store(config, rows, description=description)
            parts.append(rows)
            bar.update(shard.n_forecasts)

        shards = make_shards(todo, keys, shard_size=options.shard_size or max_batch_series)
        if shards:
            _run_shards(shards, make_forecaster, data, settings, options, deliver, time_zone=data.time_zone,
                        cached=cache is not None)
    logger.info("ray forecast: %d series (%d cached, %d computed in %d shards)", len(windows),
                len(windows) - len(todo), len(todo), len(shards))
    rows = pl.concat([p.drop(KEY_COLUMN) if KEY_COLUMN in p.columns else p for p in parts], how="vertical_relaxed")
    return finalize_table(rows, time_zone=data.time_zone, time_unit=data.time_unit)


def _run_shards(shards: list[Shard], make_forecaster: Callable[[], Forecaster], data: PanelArrays,
                settings: RunSettings, options: RayOptions, deliver: Callable[[Shard, pl.DataFrame], None], *,
                time_zone: str | None, cached: bool) -> None:
    """Run ``shards`` on a pool of actors, handing each finished one to ``deliver`` (on this thread)."""
    ray = ensure_ray(options.address, runtime_env=options.runtime_env)
    from ray.exceptions import RayActorError

    n_workers, resources = worker_resources(ray, options, min(options.num_workers, len(shards)))
    max_restarts = options.max_worker_restarts if options.max_worker_restarts is not None else 2 * n_workers
    data_ref = ray.put(data)  # once; every actor maps the same arrays from the object store
    ledger = ShardLedger(shards, max_retries=options.max_retries)
    pool = WorkerPool(ray, make_forecaster, data_ref, settings, n_workers=n_workers, resources=resources,
                       depth=options.max_in_flight_per_worker, max_restarts=max_restarts)
    logger.info("ray: %d shards on %d workers (%s each)", len(shards), n_workers,
                ", ".join(f"{k}={v:g}" for k, v in resources.items()))
    try:
        while ledger.pending or pool.owner:
            pool.fill(ledger)
            if not pool.owner:
                ledger.abandon_pending(f"no Ray worker left to run it (the last one died of: {pool.last_death})")
                break
            [ref], _ = ray.wait(pool.refs(), num_returns=1)
            try:
                rows = ray.get(ref)
            except RayActorError as exc:
                _handle_death(ray, pool, pool.owner[ref], ledger, exc, deliver)
                continue
            except Exception as exc:  # the forecaster raised: charge the shard, keep the actor
                slot, shard = pool.release(ref)
                retry = ledger.charge(shard, slot.key, error_text(exc))
                logger.warning("shard %d failed on worker %d (%s)%s", shard.index, slot.index, error_text(exc),
                               "; retrying" if retry else "; giving up")
                continue
            deliver(pool.release(ref)[1], rows)
    finally:
        pool.shutdown()
        del data_ref
    if pool.n_restarts:
        logger.info("ray: %d worker(s) replaced during the run", pool.n_restarts)
    if ledger.failures:
        raise DistributedForecastError(ledger.failures, time_zone=time_zone, n_shards=len(shards), cached=cached)


def _handle_death(ray: Any, pool: WorkerPool, slot: Slot, ledger: ShardLedger, exc: BaseException,
                  deliver: Callable[[Shard, pl.DataFrame], None]) -> None:
    """An actor died: keep the shards it finished, charge the one it was running (the first
    unfinished: an actor runs its shards in order), requeue the rest uncharged, replace it."""
    reason = error_text(exc)
    entries, charged = list(slot.inflight), False
    for ref, _ in entries:
        pool.release(ref)
    for ref, shard in entries:
        if ray.wait([ref], timeout=0)[0]:
            try:
                rows = ray.get(ref)
            except Exception as err:
                if not _is_actor_error(err):
                    ledger.charge(shard, slot.key, error_text(err))  # it failed by itself before the death
                    continue
            else:
                deliver(shard, rows)
                continue
        if not charged:
            charged = True
            retry = ledger.charge(shard, slot.key, f"worker died: {reason}")
            logger.warning("shard %d lost with worker %d%s", shard.index, slot.index,
                           "; retrying" if retry else "; giving up")
        else:
            ledger.requeue(shard)
    pool.replace(slot, reason, permanent=init_failed(exc))


def _is_actor_error(err: BaseException) -> bool:
    from ray.exceptions import RayActorError

    return isinstance(err, RayActorError)
