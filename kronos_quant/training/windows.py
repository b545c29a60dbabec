"""Training and validation windows cut from a panel, normalised exactly as at inference.

A window is ``lookback + horizon`` consecutive bars of one instrument. It is z-scored with the
mean/std of its first ``lookback`` rows only (``predictor.inputs.normalize``), applied to the
whole window and clipped -- so the forecast part never leaks into the statistics. Time
features come from the bar timestamps (``data.timefeatures``).

Owns: window enumeration per period (training windows lie inside the training period;
validation windows score only their forecast part, which lies in the validation period and at
least ``embargo_bars`` bars after the last training bar) and batch assembly. The panel ->
arrays conversion is the data layer's (``data.arrays.panel_arrays``), with its rules: duplicate
(instrument, timestamp) rows are an error and a row with a missing value cuts windows -- no
window (training or validation) contains one. Knows nothing about models, optimisers or files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl

from kronos_quant.data.arrays import InstrumentArrays, panel_arrays
from kronos_quant.predictor.inputs import EPS, normalize

__all__ = ["SeriesSet", "WindowIndex", "series_from_panel", "normalize_window", "training_windows",
           "validation_windows", "assemble_batch"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeriesSet:
    """The panel's instruments (sorted by name) as ``data.arrays.InstrumentArrays``, plus their
    wall-clock timestamps ``times[i]``: (T_i,) datetime64[us] in the panel's zone. ``values[i]``:
    (T_i, 6) float64 in FIELDS order (NaN where missing); ``stamps[i]``: (T_i, 5) time features."""

    arrays: tuple[InstrumentArrays, ...]
    times: tuple[np.ndarray, ...]

    @property
    def names(self) -> list[str]:
        return [a.instrument for a in self.arrays]

    @property
    def values(self) -> list[np.ndarray]:
        return [a.values for a in self.arrays]

    @property
    def stamps(self) -> list[np.ndarray]:
        return [a.features for a in self.arrays]

    @property
    def n_rows(self) -> int:
        return int(sum(len(a.values) for a in self.arrays))


@dataclass(frozen=True)
class WindowIndex:
    """N windows: ``series`` (N,) index into a SeriesSet, ``start`` (N,) first row; all of ``length`` rows.

    ``n_scored``: the loss counts only the last n_scored rows of each window (0 = every row).
    """

    series: np.ndarray
    start: np.ndarray
    length: int
    n_scored: int = 0

    def __len__(self) -> int:
        return int(len(self.series))


def series_from_panel(panel: pl.DataFrame) -> SeriesSet:
    """Split a long panel into per-instrument arrays (``data.arrays.panel_arrays``: DataError on
    duplicate rows; rows with a missing/non-finite field are kept and cut windows)."""
    data = panel_arrays(panel)
    n_bad = sum(int((~np.isfinite(a.values).all(axis=1)).sum()) for a in data.instruments.values())
    if n_bad:
        logger.info("%d rows hold missing or non-finite prices/volumes; no window spans them", n_bad)
    return SeriesSet(tuple(data.instruments.values()), tuple(data.local_times(n) for n in data.instruments))


def normalize_window(window: np.ndarray, lookback: int, clip: float) -> np.ndarray:
    """(L, 6) raw window -> (L, 6) float32 z-scores using the mean/std of rows [0, lookback) only.

    The first ``lookback`` rows equal ``predictor.inputs.normalize(window[:lookback], clip)[0]``
    exactly; the remaining rows use the same statistics.
    """
    _, mean, std = normalize(window[:lookback], clip)
    z = np.clip((window.astype(np.float32) - mean) / (std + EPS), -clip, clip)
    return z.astype(np.float32)


def _in_period(times: np.ndarray, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> np.ndarray:
    ok = np.ones(len(times), dtype=bool)
    if lo is not None:
        ok &= times >= np.datetime64(lo.to_datetime64(), "us")
    if hi is not None:
        ok &= times <= np.datetime64(hi.to_datetime64(), "us")
    return ok


def training_windows(series: SeriesSet, *, length: int, start: pd.Timestamp | None,
                     end: pd.Timestamp | None) -> WindowIndex:
    """Every window of ``length`` consecutive rows lying entirely inside [start, end] and holding
    no row with a missing value."""
    sid, first = [], []
    for i, (arr, times) in enumerate(zip(series.arrays, series.times)):
        inside = np.flatnonzero(_in_period(times, start, end))
        if len(inside) < length:
            continue
        lo, hi = int(inside[0]), int(inside[-1])  # rows are sorted, so the period is contiguous
        starts = arr.clean_starts(length)
        starts = starts[(starts >= lo) & (starts <= hi - length + 1)]
        sid.append(np.full(len(starts), i))
        first.append(starts)
    if not sid:
        return WindowIndex(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), length)
    return WindowIndex(np.concatenate(sid).astype(np.int64), np.concatenate(first).astype(np.int64), length)


def validation_windows(series: SeriesSet, *, lookback: int, horizon: int, start: pd.Timestamp,
                       end: pd.Timestamp, train_end: pd.Timestamp, embargo_bars: int, stride: int,
                       max_windows: int) -> WindowIndex:
    """Windows whose last ``horizon`` rows (the scored part) lie in [start, end] and more than
    ``embargo_bars`` bars after the instrument's last bar <= ``train_end``; none holds a row with
    a missing value.

    Per instrument the windows end at the last eligible bar and every ``stride`` bars before it;
    the whole set is thinned evenly (deterministically) to at most ``max_windows``.
    """
    length = lookback + horizon
    sid, first = [], []
    train_hi = np.datetime64(train_end.to_datetime64(), "us")
    for i, (arr, times) in enumerate(zip(series.arrays, series.times)):
        eligible = _in_period(times, start, end)
        n_train = int(np.searchsorted(times, train_hi, side="right"))  # rows <= train_end
        eligible[: n_train + embargo_bars] = False
        idx = np.flatnonzero(eligible)
        if len(idx) < horizon:
            continue
        lo, hi = int(idx[0]), int(idx[-1])
        ends = np.arange(hi, lo + horizon - 2, -stride)  # last row of each window
        ends = ends[ends - length + 1 >= 0]
        ends = ends[ends - length + 1 >= arr.first_clean(ends)][::-1]  # no missing value in the window
        if len(ends) == 0:
            continue
        sid.append(np.full(len(ends), i))
        first.append(ends - length + 1)
    if not sid:
        return WindowIndex(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), length, horizon)
    sid_all, first_all = np.concatenate(sid), np.concatenate(first)
    if len(sid_all) > max_windows:
        keep = np.unique(np.linspace(0, len(sid_all) - 1, max_windows).round().astype(np.int64))
        sid_all, first_all = sid_all[keep], first_all[keep]
    return WindowIndex(sid_all.astype(np.int64), first_all.astype(np.int64), length, horizon)


def assemble_batch(series: SeriesSet, index: WindowIndex, rows: np.ndarray, *, lookback: int,
                   clip: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows ``rows`` of ``index`` -> x (B, L, 6) float32 normalised, stamps (B, L, 5) int64,
    scored (B, L) bool (the rows the loss counts)."""
    length = index.length
    x = np.empty((len(rows), length, 6), dtype=np.float32)
    stamps = np.empty((len(rows), length, 5), dtype=np.int64)
    for b, r in enumerate(rows):
        s, t0 = int(index.series[r]), int(index.start[r])
        x[b] = normalize_window(series.values[s][t0:t0 + length], lookback, clip)
        stamps[b] = series.stamps[s][t0:t0 + length]
    scored = np.ones((len(rows), length), dtype=bool)
    if index.n_scored:
        scored[:, : length - index.n_scored] = False
    return x, stamps, scored
