"""Forecast-table rows from windows: one forecaster call -> B * H rows, and the finished table.

Owns the layout of the tidy forecast table (``forecast_columns``; see the ``schema`` module
docstring), summarising sample paths into rows (``forecast_batch``), computing any list of work
items in the run's batches (``forecast_items``, what a Ray actor runs) and turning collected rows
into the final table (``finalize_table``: Int64 UTC-ns times -> the panel's Datetime type,
sorted rows). Knows nothing about caching, executors or models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from kronos_quant.data.arrays import PanelArrays
from kronos_quant.engine.cache import KEY_COLUMN
from kronos_quant.engine.spec import RollingSpec
from kronos_quant.engine.windows import Window, WorkItem, build_windows
from kronos_quant.schema import CLOSE_INDEX, DEFAULT_QUANTILES, FIELDS, Forecaster, ForecastResult
from kronos_quant.schema import quantile_column as qcol

__all__ = ["forecast_columns", "forecast_batch", "forecast_items", "finalize_table", "empty_rows"]

_TIME_COLUMNS = ("asof", "target_timestamp")


def forecast_columns(quantile_levels: Sequence[float] = DEFAULT_QUANTILES, *, keep_samples: bool = False
                     ) -> list[str]:
    """Column names of the forecast table, in order (see the ``schema`` module docstring)."""
    cols = ["instrument", "asof", "step", "target_timestamp", "last_close"]
    for f in FIELDS:
        cols += [f"{f}_mean", f"{f}_median", *(qcol(f, q) for q in quantile_levels)]
    cols.append("prob_up")
    if keep_samples:
        cols.append("close_samples")
    return cols


def forecast_batch(windows: Sequence[Window], forecaster: Forecaster, spec: RollingSpec) -> pl.DataFrame:
    """One forecaster call for ``windows`` -> B * H table rows, in the order of ``windows``.

    Summaries (mean, median, quantiles, prob_up) are those of ``ForecastResult``: sample statistics
    of the paths, or the forecaster's exact ones where it gives them (``ForecastResult.exact``).

    ``asof`` and ``target_timestamp`` are Int64 UTC nanoseconds here; ``finalize_table`` turns
    them into the panel's Datetime type. Raises ValueError when the forecaster returns paths of
    the wrong shape.
    """
    horizon, levels = spec.horizon, spec.quantile_levels
    n_series = len(windows)
    result = forecaster.forecast_arrays(
        [w.series for w in windows],
        [w.past_stamps for w in windows],
        [w.future_stamps for w in windows],
        horizon=horizon,
        sampling=spec.sampling,
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
    summary = ForecastResult(paths=paths, last_close=last_close, quantile_levels=levels,
                             exact=dict(getattr(result, "exact", None) or {}))  # closed-form summaries, if given
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
    if spec.keep_samples:
        close = np.moveaxis(paths[..., CLOSE_INDEX], 1, -1).reshape(n_series * horizon, -1)  # (B*H, S)
        data["close_samples"] = pl.Series("close_samples", close).cast(pl.List(pl.Float64))
    return pl.DataFrame(data)


def forecast_items(data: PanelArrays, items: Sequence[WorkItem], forecaster: Forecaster, spec: RollingSpec
                   ) -> pl.DataFrame:
    """Rows (len(items) * H, Int64 times) in the order of ``items``, computed in forecaster calls
    of at most ``spec.batch_series`` consecutive items (what one Ray shard runs)."""
    windows = build_windows(data, list(items), spec)
    size = spec.batch_series
    parts = [forecast_batch(windows[lo:lo + size], forecaster, spec) for lo in range(0, len(windows), size)]
    return pl.concat(parts, how="vertical_relaxed") if parts else empty_rows(spec)


def empty_rows(spec: RollingSpec) -> pl.DataFrame:
    """No rows, with the (pre-finalize) schema of ``forecast_batch``'s output."""
    dtypes: dict[str, Any] = {"instrument": pl.Utf8, "asof": pl.Int64, "step": pl.Int32, "target_timestamp": pl.Int64,
                              "close_samples": pl.List(pl.Float64)}
    cols = forecast_columns(spec.quantile_levels, keep_samples=spec.keep_samples)
    return pl.DataFrame(schema={c: dtypes.get(c, pl.Float64) for c in cols})


def finalize_table(rows: pl.DataFrame, *, time_zone: str | None, time_unit: str = "us") -> pl.DataFrame:
    """Int64 UTC-ns time columns -> Datetime(time_unit, time_zone); rows sorted by instrument,
    asof, step; the cache-key column, if any, is dropped."""
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
