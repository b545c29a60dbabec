"""Forecast quality of a run, and the headline numbers a report leads with.

``score_forecasts`` scores the last step of every forecast whose outcome is known: point
accuracy beside the random walk, CRPS of the sample paths and coverage of the central
quantile intervals, all in return units (value / last close - 1) so instruments with different
prices pool. ``ensemble_calibration`` scores interval coverage against what S sample paths can
attain (last step and every step, named apart) and gives the rank histogram; ``forecast_losses``
gives the per-forecast losses that Diebold-Mariano tests compare. ``headline_metrics`` picks the
few numbers shown first (IC, MSE, Sharpe, ...). Input is the forecast table with the realised
close joined (``schema.join_realized``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from kronos_quant.metrics.accuracy import forecast_accuracy
from kronos_quant.metrics.ensemble import finite_sample_coverage, rank_histogram
from kronos_quant.metrics.probabilistic import crps_ensemble, interval_coverage
from kronos_quant.schema import central_intervals, quantile_column, sample_matrix

__all__ = ["REPORTED_INTERVALS", "score_forecasts", "ensemble_calibration", "forecast_losses", "headline_metrics"]

REPORTED_INTERVALS: tuple[float, ...] = (0.5, 0.9)  # central intervals scored when their bounds were forecast


def _known(table: pl.DataFrame, step: int | None = None) -> pl.DataFrame:
    """Rows with a known outcome (``actual_close`` finite), of one step when given."""
    rows = table.filter(pl.col("actual_close").is_not_null() & pl.col("actual_close").is_not_nan())
    return rows if step is None else rows.filter(pl.col("step") == step)


def _sample_returns(rows: pl.DataFrame, base: np.ndarray) -> np.ndarray | None:
    """(N, S) sample returns (close sample / last close - 1), or None without ``close_samples``."""
    if "close_samples" not in rows.columns:
        return None
    return sample_matrix(rows["close_samples"].to_list()) / base[:, None] - 1.0


def score_forecasts(table: pl.DataFrame, *, horizon: int, quantile_levels: Sequence[float]) -> dict[str, Any]:
    """Scores of the step-``horizon`` forecasts with a known outcome.

    table: forecast table with ``actual_close`` (null/NaN where unknown). quantile_levels: the
    levels the table was forecast with. Returns {"n_evaluated"} plus, when n_evaluated > 0,
    "accuracy" (``metrics.forecast_accuracy`` of close_mean vs the actual close, beside the random
    walk), "crps" (mean fair CRPS of the sample returns; NaN with one sample; only with
    close_samples) and, for each 50%/90% central interval whose bounds are among the levels,
    "quantile_band_coverage_50_last_step"/"quantile_band_width_50_last_step" (share of outcomes inside
    the band between the table's interpolated quantile columns at the last step -- nominal level,
    biased low for few samples; mean width in return units). Not to be confused with the
    leaderboard's ``coverage_90_last_step`` dict of :func:`ensemble_calibration`, scored against what
    the sample count can attain.
    """
    last = _known(table, horizon)
    out: dict[str, Any] = {"n_evaluated": last.height}
    if last.height == 0:
        return out
    base = last["last_close"].to_numpy().astype(np.float64)  # (N,)
    actual = last["actual_close"].to_numpy().astype(np.float64)
    out["accuracy"] = forecast_accuracy(last["close_mean"].to_numpy(), actual, base)
    obs = actual / base - 1.0
    samples = _sample_returns(last, base)
    if samples is not None:
        out["crps"] = float(np.nanmean(crps_ensemble(samples, obs))) if samples.shape[1] > 1 else float("nan")
    intervals = central_intervals(quantile_levels)
    for level in (lv for lv in REPORTED_INTERVALS if lv in intervals):
        lo, hi = (last[quantile_column("close", q)].to_numpy() / base - 1.0 for q in intervals[level])
        cov = interval_coverage(lo, hi, obs)
        out[f"quantile_band_coverage_{round(level * 100)}_last_step"] = cov["coverage"]
        out[f"quantile_band_width_{round(level * 100)}_last_step"] = cov["mean_width"]
    return out


def _coverage(rows: pl.DataFrame, level: float, quantile_levels: Sequence[float]) -> dict[str, Any]:
    base = rows["last_close"].to_numpy().astype(np.float64)
    obs = rows["actual_close"].to_numpy().astype(np.float64) / base - 1.0
    out: dict[str, Any] = {"nominal": level, "n": rows.height, "coverage": np.nan, "attainable": np.nan,
                           "gap": np.nan, "p_value": np.nan, "n_samples": 0, "quantile_coverage": np.nan}
    bounds = central_intervals(quantile_levels).get(level)
    if bounds is not None and rows.height:
        lo, hi = (rows[quantile_column("close", q)].to_numpy() / base - 1.0 for q in bounds)
        out["quantile_coverage"] = interval_coverage(lo, hi, obs)["coverage"]
    samples = _sample_returns(rows, base)
    if samples is not None and rows.height and samples.shape[1] >= 2:
        fs = finite_sample_coverage(samples, obs, level=level)
        out.update(coverage=fs["coverage"], attainable=fs["attainable_coverage"], gap=fs["coverage_gap"],
                   p_value=fs["p_value"], n=fs["n"], n_samples=fs["n_samples_max"])
    return out


def ensemble_calibration(table: pl.DataFrame, *, horizon: int, level: float = 0.9,
                         quantile_levels: Sequence[float] = (), seed: int = 0) -> dict[str, Any]:
    """Interval coverage scored against what the ensemble can attain, at the last step and over all steps.

    table: forecast table with ``actual_close``. For S sample paths the interval between the k-th
    and (S+1-k)-th order statistics covers a calibrated outcome with probability (S+1-2k)/(S+1)
    (``metrics.attainable_coverage``): "coverage" is the observed share inside it, "attainable" that
    probability, "gap" their difference (< 0: intervals too narrow), "p_value" its two-sided test
    (assumes independent rows: optimistic for overlapping horizons); "quantile_coverage" is the
    share inside the table's own quantile columns for the nominal ``level``. Returns
    {"last_step": {...}, "all_steps": {...}, "rank_histogram": ``metrics.rank_histogram`` of the
    last step (ties broken with ``seed``)}; NaN values without sample paths.
    """
    last, every = _known(table, horizon), _known(table)
    out: dict[str, Any] = {"last_step": _coverage(last, level, quantile_levels),
                           "all_steps": _coverage(every, level, quantile_levels), "rank_histogram": None}
    base = last["last_close"].to_numpy().astype(np.float64)
    samples = _sample_returns(last, base)
    if samples is not None and last.height:
        obs = last["actual_close"].to_numpy().astype(np.float64) / base - 1.0
        out["rank_histogram"] = rank_histogram(samples, obs, rng=seed)
    return out


def forecast_losses(table: pl.DataFrame) -> pd.DataFrame:
    """Per-forecast losses in return units, one row per (asof, instrument, step) with a known outcome.

    Columns: asof, instrument, step, se (squared error of the mean path's return), se_rw (of the
    no-change forecast, i.e. the squared realised return) and crps (fair CRPS of the sample
    returns; NaN without close_samples or with one sample). Feed two forecasters' losses, merged on
    the keys, to ``metrics.diebold_mariano_table``.
    """
    rows = _known(table)
    base = rows["last_close"].to_numpy().astype(np.float64)
    obs = rows["actual_close"].to_numpy().astype(np.float64) / base - 1.0
    pred = rows["close_mean"].to_numpy().astype(np.float64) / base - 1.0
    samples = _sample_returns(rows, base)
    crps = (crps_ensemble(samples, obs) if samples is not None and samples.shape[1] > 1
            else np.full(rows.height, np.nan))
    return pd.DataFrame({"asof": rows["asof"].to_pandas(), "instrument": rows["instrument"].to_pandas(),
                         "step": rows["step"].to_numpy(), "se": (pred - obs) ** 2, "se_rw": obs**2, "crps": crps})


def headline_metrics(block: Mapping[str, Any], quality: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The summary numbers of one strategy: IC, rank IC and their IRs, h-step return MSE (and the
    random walk's), Sharpe, max drawdown, annual return and turnover of the net returns.

    block: {"signal": {"ic": ``metrics.ic_summary``, "rank_ic": ...}, "backtest":
    ``report.summarize_backtest(...)``}; quality: ``score_forecasts(...)`` (None for a model-free
    signal: MSE is NaN then).
    """
    sig, net = block["signal"], block["backtest"]["net"]
    acc = (quality or {}).get("accuracy", {})
    return {
        "ic": sig["ic"]["mean"], "rank_ic": sig["rank_ic"]["mean"], "icir": sig["ic"]["icir"],
        "rank_icir": sig["rank_ic"]["icir"], "mse": acc.get("return_mse", float("nan")),
        "mse_random_walk": acc.get("return_mse_rw", float("nan")),
        "sharpe": net.get("sharpe_ratio"), "max_drawdown": net.get("max_drawdown"),
        "annual_return": net.get("annual_return"), "turnover": net.get("mean_turnover"),
    }
