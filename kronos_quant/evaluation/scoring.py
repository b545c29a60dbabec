"""One forecaster's scores: signal quality, forecast quality, prob_up and its strategy's performance.

Every function takes frames that are already on the common cells (``evaluation.cells``) and returns
JSON-able dicts whose keys follow docs of metrics.json (the leaderboard rows of
``evaluation.leaderboard``). Tests and intervals come from ``kronos_quant.metrics``; walk-forward
recalibration from ``kronos_quant.calibration``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from kronos_quant.backtest import BacktestResult
from kronos_quant.calibration import (
    coverage_report,
    prob_up_report,
    recalibrate_prob_up_walk_forward,
    recalibrate_walk_forward,
)
from kronos_quant.metrics import (
    NO_SIGNAL,
    climatology_prob_up,
    deflated_sharpe_ratio,
    directional_accuracy_test,
    ensemble_calibration,
    ensemble_log_loss_eps,
    has_cross_section,
    ic_summary,
    information_coefficient,
    mean_ci,
    performance_summary,
    probabilistic_sharpe_ratio,
    probability_scores,
    quantile_spread,
    rank_autocorrelation,
    score_forecasts,
    sharpe_ratio,
    sharpe_ratio_ci,
)
from kronos_quant.metrics.forecast_quality import REPORTED_INTERVALS
from kronos_quant.report.summary import summarize_backtest
from kronos_quant.schema import central_intervals

__all__ = ["Bootstrap", "ic_series", "signal_block", "forecast_block", "prob_up_block", "strategy_block",
           "benchmark_block", "interval", "active_returns"]

logger = logging.getLogger(__name__)

_MIN_KNOWN = 100  # outcomes needed before a walk-forward recalibration is fitted and judged


@dataclass(frozen=True)
class Bootstrap:
    """Stationary block bootstrap settings shared by every interval of a run."""

    n_resamples: int = 1000
    block_length: float | None = None
    confidence: float = 0.95
    seed: int = 0

    def kwargs(self) -> dict[str, Any]:
        return {"n_resamples": self.n_resamples, "block_length": self.block_length, "confidence": self.confidence,
                "seed": self.seed}


def interval(result: dict[str, Any]) -> dict[str, Any]:
    """The {low, high, confidence, ...} of a ``metrics.bootstrap`` result."""
    return {"low": result["ci_low"], "high": result["ci_high"], "confidence": result["confidence"],
            "estimate": result["estimate"], "p_value": result["p_value"], "block_length": result["block_length"],
            "n": result["n"], "reason": result["reason"]}


def ic_series(scores: pd.DataFrame, label: pd.DataFrame) -> pd.DataFrame:
    """Per-date IC, Rank IC and pair count n (dates with >= 3 valid pairs): columns ic, rank_ic, n."""
    x, y = scores.align(label, join="inner")
    n = pd.Series((np.isfinite(x.to_numpy()) & np.isfinite(y.to_numpy())).sum(axis=1), index=x.index)
    ic = information_coefficient(scores, label)
    rank = information_coefficient(scores, label, method="spearman")
    return pd.DataFrame({"ic": ic, "rank_ic": rank, "n": n.reindex(ic.index).astype(np.int64)})


def signal_block(scores: pd.DataFrame, label: pd.DataFrame, series: pd.DataFrame, *, horizon: int, rebalance: int,
                 boot: Bootstrap) -> dict[str, Any]:
    """IC / Rank IC summaries with Newey-West t-stats (lags >= ceil(h / rebalance) - 1), the bootstrap
    interval of the mean Rank IC, the top-minus-bottom quintile spread and the rank autocorrelation.

    Scores equal for every instrument on every date (the random walk's expected return is exactly 0)
    carry no ranking at all: their IC is undefined, not zero, and every summary says so with
    ``reason`` = ``NO_SIGNAL`` (NaN values; the report shows "n/a: no cross-sectional signal")."""
    spread = quantile_spread(scores, label, n_quantiles=5)
    autocorr = rank_autocorrelation(scores)
    reason = None if has_cross_section(scores) else NO_SIGNAL
    return {
        "ic": {**ic_summary(series["ic"], horizon=horizon, rebalance=rebalance), "reason": reason},
        "rank_ic": {**ic_summary(series["rank_ic"], horizon=horizon, rebalance=rebalance), "reason": reason},
        "rank_ic_ci": interval(mean_ci(series["rank_ic"].to_numpy(), **boot.kwargs())),
        "quantile_spread_mean": float(spread.mean()) if len(spread) else float("nan"),
        "rank_autocorrelation_mean": float(autocorr.mean()) if len(autocorr) else float("nan"),
        "n_quantiles": 5,
        "cross_section": reason is None,
    }


def _recalibrated_coverage(realized: pd.DataFrame, horizon: int, levels: list[float]) -> dict[str, Any]:
    """Coverage of walk-forward conformal intervals: {"last_step": {level: ...}, "all_steps": {...}}."""
    if not levels or realized["actual_close"].notna().sum() < _MIN_KNOWN:
        return {"last_step": {}, "all_steps": {}}
    cal = recalibrate_walk_forward(realized, levels=levels, min_history=50)
    return {"last_step": coverage_report(cal[cal["step"] == horizon], levels=levels),
            "all_steps": coverage_report(cal, levels=levels)}


def forecast_block(realized: pl.DataFrame, *, horizon: int, quantile_levels: list[float], seed: int,
                   level: float = 0.9) -> tuple[dict[str, Any], dict[str, Any]]:
    """Forecast quality of one forecast table with ``actual_close`` joined, on the common cells.

    Returns (leaderboard keys: return_mse, return_mse_rw, mse_ratio_rw, crps, coverage_90_last_step,
    coverage_90_all_steps, rank_histogram; the detailed block: score_forecasts, recalibrated coverage).
    """
    quality = score_forecasts(realized, horizon=horizon, quantile_levels=quantile_levels)
    ens = ensemble_calibration(realized, horizon=horizon, level=level, quantile_levels=quantile_levels, seed=seed)
    levels = [lv for lv in REPORTED_INTERVALS if lv in central_intervals(quantile_levels)]
    recal = _recalibrated_coverage(realized.to_pandas(), horizon, levels)
    acc = quality.get("accuracy", {})
    row: dict[str, Any] = {"return_mse": acc.get("return_mse", np.nan), "return_mse_rw": acc.get("return_mse_rw", np.nan),
                           "mse_ratio_rw": acc.get("return_mse_skill", np.nan), "crps": quality.get("crps", np.nan)}
    for where in ("last_step", "all_steps"):
        cov = dict(ens[where])
        after = recal[where].get(level, {})
        cov.update(recalibrated=after.get("coverage_after", np.nan), recalibrated_n=after.get("n", 0))
        row[f"coverage_{round(level * 100)}_{where}"] = cov
    row["rank_histogram"] = ens["rank_histogram"]
    detail = {**quality, "recalibrated_coverage_all_steps": {str(k): v for k, v in recal["all_steps"].items()}}
    return row, detail


def _wide_at_step(table: pd.DataFrame, values: pd.Series) -> pd.DataFrame:
    frame = pd.DataFrame({"asof": pd.to_datetime(table["asof"]).to_numpy(), "instrument": table["instrument"].to_numpy(),
                          "v": values.to_numpy(dtype=np.float64)})
    return frame.pivot(index="asof", columns="instrument", values="v").sort_index()


def _directional(prob: pd.DataFrame, outcome: pd.DataFrame, clim: pd.DataFrame, *, horizon: int, rebalance: int
                 ) -> dict[str, Any]:
    """Directional accuracy of prob_up against 0.5, and against the climatology on the same cells."""
    direction = directional_accuracy_test(prob.where(clim.notna()), outcome, horizon=horizon, rebalance=rebalance,
                                          baseline_prob=clim)
    vs = direction.get("vs_baseline", {})
    return {
        "directional_accuracy": direction["accuracy"], "directional_t_stat": direction["t_stat"],
        "directional_p_value": direction["p_value"], "directional_nw_lags": direction["nw_lags"],
        "directional_n": direction["n_cells"],
        # both accuracies on the cells where both call a direction; difference = mean per-date hit-rate
        # difference (model - climatology), the quantity the Newey-West test is about
        "directional_accuracy_climatology": vs.get("accuracy_baseline", np.nan),
        "directional_vs_climatology": {
            "accuracy_model": vs.get("accuracy_model", np.nan), "accuracy_climatology": vs.get("accuracy_baseline", np.nan),
            "difference": vs.get("difference", np.nan), "t_stat": vs.get("t_stat", np.nan),
            "p_value": vs.get("p_value", np.nan), "nw_lags": vs.get("nw_lags"), "n_cells": vs.get("n_cells", 0),
            "n_dates": vs.get("n_dates", 0), "reason": vs.get("reason")},
    }


def prob_up_block(realized: pl.DataFrame, panel: pl.DataFrame, *, horizon: int, rebalance: int, window: int,
                  method: str, samples: int) -> dict[str, Any]:
    """prob_up at step h scored against its own event (close t+h > close t) beside the climatology.

    Brier score and Murphy decomposition, log loss, reliability-diagram data, directional accuracy
    with a Newey-West test (against 0.5, and against the climatology on the cells where both call a
    direction), Brier and log loss of the walk-forward recalibrated probability (same rows before and
    after), all on the cells with a known outcome and a defined climatology. Every log loss clips
    probabilities at ``log_loss_eps`` = 1 / (2 ``samples``) (``metrics.ensemble_log_loss_eps``: half a
    sample path; the same for every forecaster of the run).
    """
    table = realized.filter(pl.col("step") == horizon).to_pandas()
    if table.empty or "prob_up" not in table.columns:
        return {}
    eps = ensemble_log_loss_eps(samples)
    prob = _wide_at_step(table, table["prob_up"])
    outcome = _wide_at_step(table, table["actual_close"] / table["last_close"] - 1.0)
    clim = climatology_prob_up(panel, horizon=horizon, window=window, min_periods=20).reindex_like(prob)
    scores = probability_scores(prob, outcome, climatology=clim, horizon=horizon, rebalance=rebalance,
                                log_loss_eps=eps)
    if scores["n"] == 0:
        return {"n": 0}
    model, base = scores["model"], scores["climatology"]
    out: dict[str, Any] = {
        "step": horizon, "n": scores["n"], "brier": model["brier"], "brier_climatology": base["brier"],
        "brier_skill": scores["brier_skill_score"], "brier_dm_p_value": scores["dm_brier"]["p_value"],
        "log_loss": model["log_loss"], "log_loss_climatology": base["log_loss"], "log_loss_eps": eps,
        "reliability": model["decomposition"]["reliability"], "resolution": model["decomposition"]["resolution"],
        "uncertainty": model["decomposition"]["uncertainty"],
        **_directional(prob, outcome, clim, horizon=horizon, rebalance=rebalance),
        "reliability_curve": model["reliability"], "reliability_curve_climatology": base["reliability"],
        "brier_recalibrated": np.nan, "brier_before_recalibration": np.nan, "log_loss_recalibrated": np.nan,
        "log_loss_before_recalibration": np.nan, "n_recalibrated": 0, "recalibration": method,
    }
    full = realized.to_pandas()
    if full["actual_close"].notna().sum() >= _MIN_KNOWN:
        recal = recalibrate_prob_up_walk_forward(full, method=method, min_history=_MIN_KNOWN)  # type: ignore[arg-type]
        report = prob_up_report(recal[recal["step"] == horizon], log_loss_eps=eps)
        if report["n"]:
            out.update(brier_recalibrated=report["after"]["brier"], brier_before_recalibration=report["before"]["brier"],
                       log_loss_recalibrated=report["after"]["log_loss"],
                       log_loss_before_recalibration=report["before"]["log_loss"],
                       n_recalibrated=report["n"], reliability_curve_recalibrated=report["after"]["reliability"])
    return out


def active_returns(result: BacktestResult) -> dict[str, pd.Series]:
    """Net, gross, benchmark and gross benchmark returns from the first execution bar on (as
    ``report.summarize_backtest`` scores them)."""
    executed = np.flatnonzero(result.targets.notna().any(axis=1).to_numpy())
    start = int(executed[0]) if executed.size else 0
    series = {"net": result.returns, "gross": result.gross_returns, "benchmark": result.benchmark_returns,
              "gross_benchmark": result.gross_benchmark_returns}
    return {k: v.iloc[start:] for k, v in series.items() if v is not None}


def _sharpe_tests(net: pd.Series, bench: pd.Series, *, ppy: float, n_trials: int, boot: Bootstrap) -> dict[str, Any]:
    return {
        "sharpe_ci": interval(sharpe_ratio_ci(net, periods_per_year=ppy, **boot.kwargs())),
        "psr": probabilistic_sharpe_ratio(net, periods_per_year=ppy)["psr"],
        "psr_vs_benchmark": probabilistic_sharpe_ratio(
            net, benchmark_sharpe=sharpe_ratio(bench, periods_per_year=ppy), periods_per_year=ppy)["psr"],
        "dsr": deflated_sharpe_ratio(net, n_trials=n_trials, periods_per_year=ppy)["dsr"],
        "n_trials": n_trials,
    }


def strategy_block(result: BacktestResult, *, n_trials: int, boot: Bootstrap) -> tuple[dict[str, Any], dict[str, Any]]:
    """A strategy's performance: (leaderboard keys backtest {net, gross}, cost_drag, sharpe_ci, psr,
    psr_vs_benchmark, dsr (deflated for ``n_trials`` configurations); ``report.summarize_backtest``)."""
    perf = summarize_backtest(result)
    r = active_returns(result)
    row = {"backtest": {"net": perf["net"], "gross": perf["gross"]},
           "cost_drag": perf["costs"].get("annual_cost_drag", np.nan),
           **_sharpe_tests(r["net"], r["benchmark"], ppy=result.periods_per_year, n_trials=n_trials, boot=boot)}
    return row, perf


def benchmark_block(result: BacktestResult, *, boot: Bootstrap) -> dict[str, Any]:
    """The equal-weight buy-and-hold benchmark's row (it was not searched for: n_trials 1)."""
    r, ppy = active_returns(result), result.periods_per_year
    net = performance_summary(r["benchmark"], periods_per_year=ppy)
    gross = performance_summary(r["gross_benchmark"], periods_per_year=ppy) if "gross_benchmark" in r else None
    drag = gross["annual_return"] - net["annual_return"] if gross else np.nan
    return {"backtest": {"net": net, "gross": gross}, "cost_drag": drag,
            **_sharpe_tests(r["benchmark"], r["benchmark"], ppy=ppy, n_trials=1, boot=boot)}
