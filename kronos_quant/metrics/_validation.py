"""Input checks shared by the metric modules (private).

Owns the conversion of user inputs to float arrays / aligned frames and the error messages
that say what was wrong. Knows nothing about any particular metric.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["as_float_array", "align_frames", "as_return_series", "check_periods_per_year"]


def as_float_array(values: Any, name: str) -> np.ndarray:
    """``values`` as a float64 ndarray; ValueError naming ``name`` when it cannot be converted."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"`{name}` must be numeric (array-like of floats), got {type(values).__name__}"
        ) from exc
    return arr


def align_frames(
    left: pd.DataFrame, right: pd.DataFrame, left_name: str, right_name: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Inner-align two wide frames (dates x instruments) on index and columns, as float64.

    Raises ValueError when either input is not a DataFrame or when they share no date or no column.
    """
    for frame, name in ((left, left_name), (right, right_name)):
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(
                f"`{name}` must be a wide pandas DataFrame (index = dates, columns = instruments), "
                f"got {type(frame).__name__}; pivot a long table with "
                "df.pivot(index='timestamp', columns='instrument', values=...)"
            )
    a, b = left.align(right, join="inner")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(
            f"`{left_name}` and `{right_name}` share no dates or no instruments "
            f"(shapes {left.shape} and {right.shape}); check that both are indexed by the same dates "
            "and have the same instrument columns"
        )
    try:
        return a.astype(np.float64), b.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{left_name}` and `{right_name}` must hold numeric values only") from exc


def as_return_series(returns: Any, name: str = "returns") -> pd.Series:
    """A float Series of per-period simple returns with NaNs dropped.

    Accepts a Series or a 1-D array-like; a DataFrame is rejected (pass one column).
    """
    if isinstance(returns, pd.DataFrame):
        raise ValueError(
            f"`{name}` must be a pandas Series of per-period returns, got a DataFrame with columns "
            f"{list(returns.columns)[:5]}; pass one column, e.g. frame['strategy']"
        )
    if not isinstance(returns, pd.Series):
        arr = as_float_array(returns, name)
        if arr.ndim != 1:
            raise ValueError(f"`{name}` must be one-dimensional, got shape {arr.shape}")
        returns = pd.Series(arr)
    try:
        series = returns.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must hold numeric returns, got dtype {returns.dtype}") from exc
    return series[np.isfinite(series.to_numpy())]


def check_periods_per_year(periods_per_year: float) -> float:
    if not np.isfinite(periods_per_year) or periods_per_year <= 0:
        raise ValueError(
            f"periods_per_year must be a positive number (252 for daily bars, 52 weekly, 12 monthly), "
            f"got {periods_per_year}"
        )
    return float(periods_per_year)
