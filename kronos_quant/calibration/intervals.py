"""Walk-forward recalibration of forecast intervals by split conformal prediction.

Owns turning raw central intervals of a forecast table (quantile columns or sample lists) into
recalibrated intervals, fitted per horizon step on past forecasts only. For the forecasts made
at as-of t, the calibration set is every earlier forecast of the same step whose target
timestamp is <= t (its outcome was known at t) and whose realised value is present; no later
outcome is ever read, so a backtest that uses the recalibrated intervals does not look ahead.

Two adjustments (``method``):
- "scale" (default): widen or narrow each half of the interval around the median,
  [m - c (m - lo), m + c (hi - m)]. The score of a past forecast is the smallest c that would
  have covered it, so c is scale-free and works across instruments with different prices.
- "shift": conformalised quantile regression (Romano et al. 2019) in return units,
  [lo - q last, hi + q last] with score max(lo - y, y - hi) / last; use it when raw intervals
  can have zero width (a single sample path), where scaling cannot help.
c (or q) is the ceil((n + 1) level)-th smallest of the n calibration scores, which gives at
least ``level`` coverage when scores are exchangeable.

Knows nothing about models, signals, backtests, files or plots; the caller joins the realised
values onto the forecast table (``schema.join_realized`` adds ``actual_close``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from kronos_quant.calibration._walkforward import (
    asof_and_target_times,
    require_columns,
    walk_forward_schedule,
)
from kronos_quant.errors import DataError
from kronos_quant.metrics.forecast_quality import REPORTED_INTERVALS
from kronos_quant.metrics.probabilistic import interval_coverage
from kronos_quant.schema import central_intervals, quantile_column, sample_matrix

logger = logging.getLogger(__name__)

__all__ = [
    "Method",
    "conformity_scores",
    "conformal_quantile",
    "adjust_interval",
    "ConformalRecalibrator",
    "interval_columns",
    "recalibrate_walk_forward",
    "coverage_report",
    "calibration_summary",
]

Method = Literal["scale", "shift"]
_NEUTRAL = {"scale": 1.0, "shift": 0.0}


def _check_method(method: str) -> None:
    if method not in _NEUTRAL:
        raise ValueError(f"method must be 'scale' or 'shift', got {method!r}")


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(
            f"interval level must lie strictly between 0 and 1 (0.9 = 90% interval), got {level}"
        )


def conformity_scores(lower: Any, upper: Any, center: Any, obs: Any, *, method: Method = "scale",
                      scale: Any = None) -> np.ndarray:
    """Non-conformity score of each past forecast, same shape as ``obs``; NaN where an input is NaN.

    "scale": (m - y) / (m - lo) below the median m, (y - m) / (hi - m) above it (>= 0; inf for a
    miss of a zero-width half). "shift": max(lo - y, y - hi) / scale (``scale`` defaults to 1;
    pass the last close to work in return units).
    """
    _check_method(method)
    lo, hi, y = (np.asarray(a, dtype=np.float64) for a in (lower, upper, obs))
    if method == "shift":
        s = np.ones_like(y) if scale is None else np.asarray(scale, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.maximum(lo - y, y - hi) / s
    m = np.clip(np.asarray(center, dtype=np.float64), lo, hi)
    below = y < m
    dist = np.where(below, m - y, y - m)  # (N,) >= 0
    half = np.where(below, m - lo, hi - m)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(half > 0, dist / np.where(half > 0, half, 1.0), np.where(dist > 0, np.inf, 0.0))
    score[np.isnan(lo) | np.isnan(hi) | np.isnan(m) | np.isnan(y)] = np.nan
    return score


def conformal_quantile(scores: Any, level: float) -> float:
    """The ceil((n + 1) level)-th smallest finite-or-infinite score (capped at the largest); NaN if none.

    NaN scores are ignored. With n >= level / (1 - level) scores the cap never binds.
    """
    _check_level(level)
    s = np.asarray(scores, dtype=np.float64)
    s = s[~np.isnan(s)]
    n = s.size
    if n == 0:
        return np.nan
    k = min(int(np.ceil((n + 1) * level)), n)
    return float(np.partition(s, k - 1)[k - 1])


def adjust_interval(lower: Any, upper: Any, center: Any, factor: Any, *, method: Method = "scale",
                    scale: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Apply a fitted factor (scalar or per row) to intervals; returns (lower, upper) arrays.

    "scale": m -/+ factor * half-width (a zero-width half stays at m). "shift": lo - factor * scale,
    hi + factor * scale; where a negative shift would cross the bounds both collapse to the midpoint.
    """
    _check_method(method)
    lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    f = np.asarray(factor, dtype=np.float64)
    if method == "shift":
        s = np.ones_like(lo) if scale is None else np.asarray(scale, dtype=np.float64)
        new_lo, new_hi = lo - f * s, hi + f * s
        mid = 0.5 * (lo + hi)
        crossed = new_lo > new_hi
        return np.where(crossed, mid, new_lo), np.where(crossed, mid, new_hi)
    m = np.clip(np.asarray(center, dtype=np.float64), lo, hi)
    half_lo, half_hi = m - lo, hi - m
    with np.errstate(invalid="ignore"):
        new_lo = m - np.where(half_lo > 0, f * half_lo, 0.0)
        new_hi = m + np.where(half_hi > 0, f * half_hi, 0.0)
    return new_lo, new_hi


class ConformalRecalibrator:
    """Split-conformal recalibration of one interval level, fitted once on arrays.

    ``fit`` takes past intervals (lower, upper, center) with their outcomes; ``transform`` applies
    the fitted factor to new intervals. For walk-forward use on a forecast table see
    :func:`recalibrate_walk_forward`. Attributes after fit: ``factor_`` (c or q) and ``n_``.
    """

    def __init__(self, *, level: float = 0.9, method: Method = "scale") -> None:
        _check_level(level)
        _check_method(method)
        self.level = level
        self.method = method
        self.factor_: float | None = None
        self.n_: int = 0

    def fit(self, lower: Any, upper: Any, center: Any, obs: Any, *, scale: Any = None) -> ConformalRecalibrator:
        scores = conformity_scores(lower, upper, center, obs, method=self.method, scale=scale)
        self.n_ = int((~np.isnan(scores)).sum())
        if self.n_ == 0:
            raise ValueError("no calibration pair with finite bounds and a known outcome; cannot fit")
        self.factor_ = conformal_quantile(scores, self.level)
        return self

    def transform(self, lower: Any, upper: Any, center: Any, *, scale: Any = None) -> tuple[np.ndarray, np.ndarray]:
        if self.factor_ is None:
            raise ValueError("ConformalRecalibrator is not fitted; call fit(...) first")
        return adjust_interval(lower, upper, center, self.factor_, method=self.method, scale=scale)


def interval_columns(field: str, level: float, *, calibrated: bool) -> tuple[str, str]:
    """Names of the (lower, upper) columns written by :func:`recalibrate_walk_forward`.

    e.g. ("close_lower_90", "close_upper_90") for the raw 90% interval and
    ("close_lower_90_cal", "close_upper_90_cal") for the recalibrated one.
    """
    _check_level(level)
    suffix = "_cal" if calibrated else ""
    label = f"{level * 100:g}"
    return f"{field}_lower_{label}{suffix}", f"{field}_upper_{label}{suffix}"


def _factor_column(field: str, level: float) -> str:
    return f"{field}_cal_factor_{level * 100:g}"


def _history_column(field: str, level: float) -> str:
    return f"{field}_cal_n_{level * 100:g}"


def _raw_bounds(
    frame: pd.DataFrame, field: str, level: float, samples_col: str, cache: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    lo_col = quantile_column(field, (1.0 - level) / 2.0)
    hi_col = quantile_column(field, (1.0 + level) / 2.0)
    if lo_col in frame.columns and hi_col in frame.columns:
        return frame[lo_col].to_numpy(dtype=np.float64), frame[hi_col].to_numpy(dtype=np.float64)
    if samples_col in frame.columns:
        if "samples" not in cache:
            cache["samples"] = sample_matrix(frame[samples_col])
        x = cache["samples"]
        bounds = np.full((2, len(frame)), np.nan)
        ok = np.isfinite(x).any(axis=1)
        if ok.any():
            bounds[:, ok] = np.nanquantile(x[ok], [(1 - level) / 2, (1 + level) / 2], axis=1)
        return bounds[0], bounds[1]
    raise DataError(
        f"the forecast table has no {lo_col!r}/{hi_col!r} columns for the {level:g} interval and no "
        f"{samples_col!r} column to derive it from; forecast with quantile levels including "
        f"{(1 - level) / 2:g} and {(1 + level) / 2:g}, or keep the sample paths"
    )


def _center(
    frame: pd.DataFrame, field: str, center_col: str | None, samples_col: str, cache: dict[str, np.ndarray]
) -> np.ndarray:
    candidates = [center_col] if center_col else [f"{field}_median", quantile_column(field, 0.5)]
    for col in candidates:
        if col in frame.columns:
            return frame[col].to_numpy(dtype=np.float64)
    if center_col is None and samples_col in frame.columns:
        if "samples" not in cache:
            cache["samples"] = sample_matrix(frame[samples_col])
        x = cache["samples"]
        out = np.full(len(frame), np.nan)
        ok = np.isfinite(x).any(axis=1)
        out[ok] = np.nanmedian(x[ok], axis=1)
        return out
    raise DataError(f"the forecast table has none of the median columns {candidates}; pass center_col=...")


def recalibrate_walk_forward(
    forecasts: pd.DataFrame,
    *,
    actual_col: str = "actual_close",
    field: str = "close",
    levels: Sequence[float] = (0.5, 0.9),
    asof_col: str = "asof",
    target_time_col: str = "target_timestamp",
    step_col: str | None = "step",
    center_col: str | None = None,
    last_col: str = "last_close",
    samples_col: str | None = None,
    method: Method = "scale",
    window: int | None = None,
    min_history: int = 50,
) -> pd.DataFrame:
    """Recalibrated central intervals for every forecast, fitted walk-forward per horizon step.

    forecasts: the tidy forecast table (one row per instrument x as-of x step) with the realised
    value joined as ``actual_col`` (NaN where not yet known). Raw ``level`` intervals come from
    the quantile columns ``quantile_column(field, (1 -/+ level) / 2)`` or, when those are absent,
    from the sample lists in ``samples_col`` (default ``f"{field}_samples"``); the center is
    ``center_col`` (default ``f"{field}_median"``, else the 0.5 quantile, else the sample median).

    For each as-of t and step h, the factor is fitted on the rows of step h with
    target_timestamp <= t and a known outcome -- the most recent ``window`` of them by target
    time (all of them when None). With fewer than ``min_history`` such rows the raw interval is
    kept and the factor is NaN. ``step_col=None`` pools all steps.

    Returns a copy of ``forecasts`` (same index and row order) with, per level,
    ``interval_columns(field, level, calibrated=False/True)`` (raw and recalibrated bounds),
    ``{field}_cal_factor_{pct}`` and ``{field}_cal_n_{pct}`` (calibration rows used).
    """
    _check_method(method)
    for level in levels:
        _check_level(level)
    if min_history < 1:
        raise ValueError(f"min_history must be >= 1, got {min_history}")
    if window is not None and window < 1:
        raise ValueError(f"window must be a positive number of calibration rows or None, got {window}")
    if not isinstance(forecasts, pd.DataFrame):
        raise ValueError(f"`forecasts` must be a pandas DataFrame, got {type(forecasts).__name__}")
    samples_col = samples_col or f"{field}_samples"
    require_columns(
        forecasts, [actual_col, asof_col, target_time_col, step_col, last_col if method == "shift" else None]
    )
    t_asof, t_target = asof_and_target_times(forecasts, asof_col, target_time_col)
    y = forecasts[actual_col].to_numpy(dtype=np.float64)
    scale = forecasts[last_col].to_numpy(dtype=np.float64) if method == "shift" else None
    cache: dict[str, np.ndarray] = {}
    center = _center(forecasts, field, center_col, samples_col, cache) if method == "scale" else None
    groups = forecasts[step_col].to_numpy() if step_col is not None else np.zeros(len(forecasts))

    out = forecasts.copy()
    for level in levels:
        lo, hi = _raw_bounds(forecasts, field, level, samples_col, cache)
        scores = conformity_scores(lo, hi, center, y, method=method, scale=scale)
        factor = np.full(len(forecasts), np.nan)
        n_hist = np.zeros(len(forecasts), dtype=np.int64)
        for group in pd.unique(pd.Series(groups)):
            rows = np.flatnonzero(groups == group)
            plan = walk_forward_schedule(rows, ~np.isnan(scores[rows]), t_asof, t_target, window)
            known_scores = scores[plan.known]
            fitted = np.full(plan.ends.size, np.nan)
            for j, (start, end) in enumerate(zip(plan.starts, plan.ends)):
                if end - start >= min_history:
                    fitted[j] = conformal_quantile(known_scores[start:end], level)
            factor[rows] = fitted[plan.inverse]
            n_hist[rows] = (plan.ends - plan.starts)[plan.inverse]
        use = np.where(np.isnan(factor), _NEUTRAL[method], factor)
        new_lo, new_hi = adjust_interval(lo, hi, center, use, method=method, scale=scale)
        raw = np.isnan(factor)
        lo_raw_col, hi_raw_col = interval_columns(field, level, calibrated=False)
        lo_cal_col, hi_cal_col = interval_columns(field, level, calibrated=True)
        out[lo_raw_col], out[hi_raw_col] = lo, hi
        out[lo_cal_col] = np.where(raw, lo, new_lo)
        out[hi_cal_col] = np.where(raw, hi, new_hi)
        out[_factor_column(field, level)] = factor
        out[_history_column(field, level)] = n_hist
        logger.info("recalibrated %g intervals: %d of %d rows fitted (min_history=%d)", level, int((~raw).sum()),
                    len(forecasts), min_history)
    return out


def coverage_report(
    recalibrated: pd.DataFrame,
    *,
    actual_col: str = "actual_close",
    field: str = "close",
    levels: Sequence[float] = (0.5, 0.9),
    last_col: str | None = "last_close",
    only_recalibrated: bool = True,
) -> dict[float, dict[str, float]]:
    """Empirical coverage and width of the raw and recalibrated intervals, per level.

    recalibrated: the output of :func:`recalibrate_walk_forward` with ``actual_col`` filled in.
    Rows without a realised value are skipped; with ``only_recalibrated`` so are rows whose
    interval was left raw (too little history), so both columns are compared on the same rows.
    Returns {level: {nominal, n, coverage_before, coverage_after, mean_width_before,
    mean_width_after[, mean_rel_width_before, mean_rel_width_after]}}; widths are in price
    units, relative widths are fractions of ``last_col`` (comparable across instruments).
    """
    report: dict[float, dict[str, float]] = {}
    for level in levels:
        raw_cols = interval_columns(field, level, calibrated=False)
        cal_cols = interval_columns(field, level, calibrated=True)
        require_columns(recalibrated, [actual_col, *raw_cols, *cal_cols, _factor_column(field, level)])
        frame = recalibrated
        if only_recalibrated:
            frame = frame[frame[_factor_column(field, level)].notna()]
        y = frame[actual_col].to_numpy(dtype=np.float64)
        before = interval_coverage(frame[raw_cols[0]], frame[raw_cols[1]], y)
        after = interval_coverage(frame[cal_cols[0]], frame[cal_cols[1]], y)
        entry: dict[str, float] = {
            "nominal": float(level),
            "n": after["n"],
            "coverage_before": before["coverage"],
            "coverage_after": after["coverage"],
            "mean_width_before": before["mean_width"],
            "mean_width_after": after["mean_width"],
        }
        if last_col is not None and last_col in frame.columns:
            last = frame[last_col].to_numpy(dtype=np.float64)
            known = np.isfinite(y) & np.isfinite(last) & (last != 0)
            for tag, cols in (("before", raw_cols), ("after", cal_cols)):
                width = frame[cols[1]].to_numpy(dtype=np.float64) - frame[cols[0]].to_numpy(dtype=np.float64)
                entry[f"mean_rel_width_{tag}"] = (
                    float(np.mean(width[known] / last[known])) if known.any() else np.nan
                )
        report[float(level)] = entry
    return report


def calibration_summary(forecasts: pd.DataFrame, quantile_levels: Sequence[float], *, min_known: int = 100,
                        min_history: int = 50) -> dict[str, dict[str, float]]:
    """``coverage_report`` of a walk-forward recalibration of the 50% and 90% close intervals.

    forecasts: the forecast table with ``actual_close``; quantile_levels: its levels. Keys are the
    levels as text ("0.5", "0.9"), for JSON. Empty when neither interval's bounds were forecast or
    fewer than ``min_known`` outcomes are known (too few to fit and judge a recalibration).
    """
    intervals = central_intervals(quantile_levels)
    levels = [lv for lv in REPORTED_INTERVALS if lv in intervals]
    if not levels or forecasts["actual_close"].notna().sum() < min_known:
        return {}
    calibrated = recalibrate_walk_forward(forecasts, levels=levels, min_history=min_history)
    return {str(k): v for k, v in coverage_report(calibrated, levels=levels).items()}
