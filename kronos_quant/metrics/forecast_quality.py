"""Forecast quality of a run, and the headline numbers a report leads with.

``score_forecasts`` scores the last step of every forecast whose outcome is known: point
accuracy beside the random walk, CRPS of the sample paths and coverage of the central
quantile intervals, all in return units (value / last close - 1) so instruments with different
prices pool. ``headline_metrics`` picks the few numbers shown first (IC, MSE, Sharpe, ...).
Input is the forecast table with the realised close joined (``schema.join_realized``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from kronos_quant.metrics.accuracy import forecast_accuracy
from kronos_quant.metrics.probabilistic import crps_ensemble, interval_coverage
from kronos_quant.schema import central_intervals, quantile_column, sample_matrix

__all__ = ["REPORTED_INTERVALS", "score_forecasts", "headline_metrics"]

REPORTED_INTERVALS: tuple[float, ...] = (0.5, 0.9)  # central intervals scored when their bounds were forecast


def score_forecasts(table: pl.DataFrame, *, horizon: int, quantile_levels: Sequence[float]) -> dict[str, Any]:
    """Scores of the step-``horizon`` forecasts with a known outcome.

    table: forecast table with ``actual_close`` (null/NaN where unknown). quantile_levels: the
    levels the table was forecast with. Returns {"n_evaluated"} plus, when n_evaluated > 0,
    "accuracy" (``metrics.forecast_accuracy`` of close_mean vs the actual close, beside the random
    walk), "crps" (mean fair CRPS of the sample returns; NaN with one sample; only with
    close_samples) and, for each 50%/90% central interval whose bounds are among the levels,
    "coverage_50"/"width_50" (share of outcomes inside; mean width in return units).
    """
    last = table.filter((pl.col("step") == horizon) & pl.col("actual_close").is_not_null()
                        & pl.col("actual_close").is_not_nan())
    out: dict[str, Any] = {"n_evaluated": last.height}
    if last.height == 0:
        return out
    base = last["last_close"].to_numpy().astype(np.float64)  # (N,)
    actual = last["actual_close"].to_numpy().astype(np.float64)
    out["accuracy"] = forecast_accuracy(last["close_mean"].to_numpy(), actual, base)
    obs = actual / base - 1.0
    if "close_samples" in last.columns:
        samples = sample_matrix(last["close_samples"].to_list()) / base[:, None] - 1.0  # (N, S)
        out["crps"] = float(np.nanmean(crps_ensemble(samples, obs))) if samples.shape[1] > 1 else float("nan")
    intervals = central_intervals(quantile_levels)
    for level in (lv for lv in REPORTED_INTERVALS if lv in intervals):
        lo, hi = (last[quantile_column("close", q)].to_numpy() / base - 1.0 for q in intervals[level])
        cov = interval_coverage(lo, hi, obs)
        out[f"coverage_{round(level * 100)}"] = cov["coverage"]
        out[f"width_{round(level * 100)}"] = cov["mean_width"]
    return out


def headline_metrics(block: Mapping[str, Any], quality: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The summary numbers of one strategy: IC, rank IC and their IRs, h-step return MSE (and the
    random walk's), Sharpe, max drawdown, annual return and turnover of the net returns.

    block: {"signal": ``report.summarize_signal(...)``, "backtest": ``report.summarize_backtest(...)``};
    quality: ``score_forecasts(...)`` (None for a model-free signal: MSE is NaN then).
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
