"""Rolling-window forecasting over dates x instruments -> the tidy forecast table.

Owns the loop of a rolling run: plan work items (``windows.plan_windows``), skip those already in
the forecast cache, batch the rest across instruments and dates (longest windows first, to limit
padding), call the forecaster, summarise its sample paths into table rows
(``forecast_batch``) and write each finished batch to the cache before the next one starts.

The engine knows nothing about tokenization, torch or any model: it talks to any object that
satisfies ``schema.Forecaster``. Planning (``plan_windows``), computing a batch
(``forecast_batch``) and caching (``ForecastCache``) are separate so that a distributed backend
can shard work items and reuse them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from kronos_quant.data.calendar import BarCalendar
from kronos_quant.engine.cache import KEY_COLUMN, ForecastCache, config_key, window_key
from kronos_quant.engine.windows import PanelArrays, Window, build_windows, plan_windows, prepare_panel
from kronos_quant.schema import (
    CLOSE_INDEX,
    DEFAULT_QUANTILES,
    FIELDS,
    Forecaster,
    ForecastResult,
    SamplingSpec,
)
from kronos_quant.schema import quantile_column as qcol
from kronos_quant.utils.progress import make_progress

__all__ = ["forecast_columns", "forecast_batch", "finalize_table", "rolling_forecast"]

logger = logging.getLogger(__name__)

_TIME_COLUMNS = ("asof", "target_timestamp")


def forecast_columns(
    quantile_levels: Sequence[float] = DEFAULT_QUANTILES, *, keep_samples: bool = False
) -> list[str]:
    """Column names of the forecast table, in order (see the ``schema`` module docstring)."""
    cols = ["instrument", "asof", "step", "target_timestamp", "last_close"]
    for f in FIELDS:
        cols += [f"{f}_mean", f"{f}_median", *(qcol(f, q) for q in quantile_levels)]
    cols.append("prob_up")
    if keep_samples:
        cols.append("close_samples")
    return cols


def _check_levels(quantile_levels: Sequence[float]) -> tuple[float, ...]:
    levels = tuple(float(q) for q in quantile_levels)
    for q in levels:
        qcol("x", q)  # raises ValueError for levels outside (0, 1)
    if len(set(levels)) != len(levels):
        raise ValueError(f"quantile_levels must be distinct, got {levels}")
    return levels


def forecast_batch(
    windows: Sequence[Window],
    forecaster: Forecaster,
    *,
    horizon: int,
    sampling: SamplingSpec,
    quantile_levels: Sequence[float] = DEFAULT_QUANTILES,
    keep_samples: bool = False,
) -> pl.DataFrame:
    """One forecaster call for ``windows`` -> B * H table rows.

    ``asof`` and ``target_timestamp`` are Int64 UTC nanoseconds here; ``finalize_table`` turns
    them into the panel's Datetime type.
    """
    levels = _check_levels(quantile_levels)
    n_series = len(windows)
    result = forecaster.forecast_arrays(
        [w.series for w in windows],
        [w.past_stamps for w in windows],
        [w.future_stamps for w in windows],
        horizon=horizon,
        sampling=sampling,
        seeds=[w.seed for w in windows],
        quantile_levels=levels,
    )
    paths = np.asarray(result.paths, dtype=np.float64)
    if paths.ndim != 4 or paths.shape[0] != n_series or paths.shape[2:] != (horizon, len(FIELDS)):
        raise ValueError(
            f"forecaster {forecaster.identity} returned paths of shape {paths.shape}; "
            f"expected ({n_series}, S, {horizon}, {len(FIELDS)})"
        )
    last_close = np.array([w.last_close for w in windows], dtype=np.float64)
    summary = ForecastResult(paths=paths, last_close=last_close, quantile_levels=levels)
    mean = summary.mean.reshape(n_series * horizon, len(FIELDS))  # (B*H, 6)
    median = summary.median.reshape(n_series * horizon, len(FIELDS))
    quant = np.moveaxis(summary.quantiles, 1, -1).reshape(n_series * horizon, len(FIELDS), len(levels))
    data: dict[str, Any] = {
        "instrument": pl.Series(np.repeat([w.item.instrument for w in windows], horizon), dtype=pl.Utf8),
        "asof": pl.Series(np.repeat([w.item.asof_ns for w in windows], horizon), dtype=pl.Int64),
        "step": pl.Series(np.tile(np.arange(1, horizon + 1), n_series), dtype=pl.Int32),
        "target_timestamp": pl.Series(
            np.concatenate([w.target_ns for w in windows]) if windows else [], dtype=pl.Int64
        ),
        "last_close": np.repeat(last_close, horizon),
    }
    for j, f in enumerate(FIELDS):
        data[f"{f}_mean"] = mean[:, j]
        data[f"{f}_median"] = median[:, j]
        for k, q in enumerate(levels):
            data[qcol(f, q)] = quant[:, j, k]
    data["prob_up"] = summary.prob_up.reshape(-1)
    if keep_samples:
        close = np.moveaxis(paths[..., CLOSE_INDEX], 1, -1).reshape(n_series * horizon, -1)  # (B*H, S)
        data["close_samples"] = pl.Series("close_samples", close).cast(pl.List(pl.Float64))
    return pl.DataFrame(data)


def finalize_table(rows: pl.DataFrame, *, time_zone: str | None, time_unit: str = "us") -> pl.DataFrame:
    """Int64 UTC-ns time columns -> Datetime(time_unit, time_zone); rows sorted by instrument, asof, step."""
    exprs = []
    for c in _TIME_COLUMNS:
        e = pl.col(c).cast(pl.Datetime("ns"))
        if time_zone is not None:
            e = e.dt.replace_time_zone("UTC").dt.convert_time_zone(time_zone)
        exprs.append(e.dt.cast_time_unit(time_unit).alias(c))  # type: ignore[arg-type]
    out = rows.with_columns(exprs)
    if KEY_COLUMN in out.columns:
        out = out.drop(KEY_COLUMN)
    return out.sort("instrument", "asof", "step")


def _empty_rows(levels: tuple[float, ...], keep_samples: bool) -> pl.DataFrame:
    schema: dict[str, Any] = {}
    for c in forecast_columns(levels, keep_samples=keep_samples):
        schema[c] = {
            "instrument": pl.Utf8,
            "asof": pl.Int64,
            "step": pl.Int32,
            "target_timestamp": pl.Int64,
            "close_samples": pl.List(pl.Float64),
        }.get(c, pl.Float64)
    return pl.DataFrame(schema=schema)


def _forecast_missing(
    todo: Sequence[Window],
    keys: Sequence[str],
    forecaster: Forecaster,
    *,
    horizon: int,
    sampling: SamplingSpec,
    levels: tuple[float, ...],
    keep_samples: bool,
    max_batch_series: int,
    store: Callable[[pl.DataFrame], Any] | None,
    on_batch: Callable[[int], Any],
) -> list[pl.DataFrame]:
    """Forecast ``todo`` in batches of similar window length (longest first); one table per batch.

    With ``store``, each batch (plus its ``cache_key`` column, from ``keys``) is handed to it on
    one background thread while the model works on the next batch. At most one write is pending;
    a failed write is raised at the next batch, and pending writes finish even when the model
    raises, so an interrupted run keeps every batch it completed.
    """
    order = sorted(
        range(len(todo)), key=lambda i: (-todo[i].item.length, todo[i].item.asof_ns, todo[i].item.instrument)
    )
    out: list[pl.DataFrame] = []
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kq-cache") if store is not None else None
    pending: Future[Any] | None = None
    try:
        for lo in range(0, len(order), max_batch_series):
            idx = order[lo : lo + max_batch_series]
            rows = forecast_batch(
                [todo[i] for i in idx],
                forecaster,
                horizon=horizon,
                sampling=sampling,
                quantile_levels=levels,
                keep_samples=keep_samples,
            )
            if store is not None and writer is not None:
                rows = rows.with_columns(pl.Series(KEY_COLUMN, np.repeat([keys[i] for i in idx], horizon)))
                if pending is not None:
                    pending.result()
                pending = writer.submit(store, rows)
            out.append(rows)
            on_batch(len(idx))
        if pending is not None:
            pending.result()
    finally:
        if writer is not None:
            writer.shutdown(wait=True)
    return out


def split_cached(windows: Sequence[Window], cache: ForecastCache | None, config: str
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


def cache_description(identity: dict[str, Any], sampling: SamplingSpec, *, horizon: int,
                      quantile_levels: Sequence[float], keep_samples: bool) -> dict[str, Any]:
    """What a cache batch was computed with (stored beside it for humans and audits)."""
    return {"identity": identity, "sampling": asdict(sampling), "horizon": horizon,
            "quantile_levels": list(quantile_levels), "keep_samples": keep_samples}


def rolling_forecast(
    panel: pl.DataFrame | PanelArrays,
    forecaster: Forecaster,
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
) -> pl.DataFrame:
    """Forecast every (instrument, as-of) of a rolling schedule; returns the tidy forecast table.

    panel: long frame with ``schema.PANEL_COLUMNS`` (or ``prepare_panel``'s arrays). Each forecast
    as of bar t sees only the last ``lookback`` bars up to and including t (fewer, down to
    ``min_history``, near the start of an instrument's history or after a missing value). As-of
    dates: every ``rebalance`` bars of the union calendar or the given dates, within [start, end]
    (see ``plan_windows``). Target timestamps are the data's next ``horizon`` bars, extended
    beyond the last bar (live runs) with ``calendar`` (a ``data.calendar.BarCalendar``; default:
    inferred from the panel). Sampling seeds are per (seed, instrument, as-of), so the table does
    not depend on ``max_batch_series`` or on what is cached.
    With ``cache`` (a ForecastCache or a directory) only missing forecasts are computed. Each
    finished batch is written to its own file (by a background thread, while the model works on
    the next batch), so a killed run loses at most the batches in flight and a rerun resumes.

    Returns one row per instrument x as-of x step, sorted, with the columns of
    ``forecast_columns(quantile_levels, keep_samples=keep_samples)``; prices in the panel's units.
    """
    if not isinstance(forecaster, Forecaster):
        raise TypeError(
            f"forecaster must satisfy kronos_quant.schema.Forecaster, got {type(forecaster).__name__}"
        )
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if max_batch_series < 1:
        raise ValueError(f"max_batch_series must be >= 1, got {max_batch_series}")
    sampling = SamplingSpec() if sampling is None else sampling
    levels = _check_levels(quantile_levels)
    data = panel if isinstance(panel, PanelArrays) else prepare_panel(panel, calendar=calendar)
    items = plan_windows(
        data, lookback=lookback, rebalance=rebalance, min_history=min_history, start=start, end=end
    )
    windows = build_windows(data, items, horizon=horizon, base_seed=sampling.seed)
    if isinstance(cache, (str, os.PathLike)):
        cache = ForecastCache(cache)

    identity = forecaster.identity
    config = config_key(
        identity, sampling, horizon=horizon, quantile_levels=levels, keep_samples=keep_samples
    )
    hits, todo, keys = split_cached(windows, cache, config)
    parts: list[pl.DataFrame] = [] if hits is None else [hits]
    description = cache_description(identity, sampling, horizon=horizon, quantile_levels=levels,
                                    keep_samples=keep_samples)
    with make_progress(len(windows), "forecasts", quiet=quiet, unit="series") as bar:
        bar.update(len(windows) - len(todo))
        computed = _forecast_missing(
            todo,
            keys,
            forecaster,
            horizon=horizon,
            sampling=sampling,
            levels=levels,
            keep_samples=keep_samples,
            max_batch_series=max_batch_series,
            store=None if cache is None else partial(cache.store, config, description=description),
            on_batch=bar.update,
        )
    parts.extend(computed)
    logger.info(
        "rolling forecast: %d series (%d cached, %d computed in %d batches)",
        len(windows),
        len(windows) - len(todo),
        len(todo),
        len(computed),
    )
    if not parts:
        parts.append(_empty_rows(levels, keep_samples))
    rows = pl.concat(
        [p.drop(KEY_COLUMN) if KEY_COLUMN in p.columns else p for p in parts], how="vertical_relaxed"
    )
    return finalize_table(rows, time_zone=data.time_zone, time_unit=data.time_unit)
