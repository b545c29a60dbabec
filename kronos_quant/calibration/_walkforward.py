"""Walk-forward bookkeeping shared by the recalibrators (private).

Owns reading the as-of / target-time columns of a forecast table and, per group of rows (one
horizon step), which past rows have an outcome known at each as-of: rows whose target time is
<= the as-of. Knows nothing about what is fitted on those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kronos_quant.errors import DataError

__all__ = ["require_columns", "time_values", "asof_and_target_times", "Schedule", "walk_forward_schedule"]


def require_columns(frame: pd.DataFrame, cols: Sequence[str | None]) -> None:
    """DataError naming the missing columns (None entries are ignored)."""
    missing = [c for c in cols if c is not None and c not in frame.columns]
    if missing:
        raise DataError(
            f"the forecast table lacks column(s) {missing}; it has {list(frame.columns)}. "
            "Join the realised values first (e.g. an 'actual_close' column) or pass the right *_col names"
        )


def time_values(frame: pd.DataFrame, col: str) -> tuple[np.ndarray, bool]:
    """(N,) comparable numbers for a time column (ns since epoch, UTC) and whether it is tz-aware."""
    series = frame[col]
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=np.float64)
        if np.isnan(values).any():
            raise DataError(f"forecast column {col!r} has missing values; every row needs a time")
        return values, False
    try:
        stamps = pd.to_datetime(series)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"forecast column {col!r} must hold timestamps or numbers, got dtype {series.dtype}"
        ) from exc
    if stamps.isna().any():
        raise DataError(f"forecast column {col!r} has missing timestamps; every row needs a time")
    aware = stamps.dt.tz is not None
    if aware:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64), aware


def asof_and_target_times(frame: pd.DataFrame, asof_col: str, target_time_col: str) -> tuple[np.ndarray, np.ndarray]:
    """(N,) as-of and (N,) target times as comparable numbers; DataError when one is tz-aware and one not."""
    t_asof, asof_aware = time_values(frame, asof_col)
    t_target, target_aware = time_values(frame, target_time_col)
    if asof_aware != target_aware:
        raise DataError(
            f"{asof_col!r} and {target_time_col!r} must both be time-zone aware or both naive; "
            "convert one with .dt.tz_localize / .dt.tz_convert"
        )
    return t_asof, t_target


@dataclass(frozen=True)
class Schedule:
    """Which calibration rows each as-of of one group may use.

    known: row indices (into the table) with a known outcome, sorted by (target time, as-of).
    starts, ends: (A,) per distinct as-of of the group, the slice known[start:end] of rows whose
    target time is <= that as-of (the most recent ``window`` of them). inverse: (R,) the distinct
    as-of of each of the group's R rows.
    """

    known: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    inverse: np.ndarray


def walk_forward_schedule(
    rows: np.ndarray, known: np.ndarray, t_asof: np.ndarray, t_target: np.ndarray, window: int | None
) -> Schedule:
    """The :class:`Schedule` of a group: rows (R,) its row indices, known (R,) bool outcome-known mask."""
    usable = rows[known]
    usable = usable[np.lexsort((t_asof[usable], t_target[usable]))]  # by target time, then as-of
    asofs, inverse = np.unique(t_asof[rows], return_inverse=True)
    ends = np.searchsorted(t_target[usable], asofs, side="right")  # outcomes known at each as-of
    starts = np.maximum(ends - window, 0) if window is not None else np.zeros_like(ends)
    return Schedule(known=usable, starts=starts, ends=ends, inverse=inverse)
