"""A run's evaluation: the leaderboard, the comparisons, the verdict lines and the per-date IC table.

``evaluate_strategy`` scores the model, each baseline and the equal-weight benchmark under one
protocol (``evaluation.run``) and lays out metrics.json: the headline keys of the model (ic,
rank_ic, icir, rank_icir, mse, mse_random_walk, sharpe, max_drawdown, annual_return, turnover),
then label, label_description, horizon, rebalance, n_trials, leaderboard, comparisons, verdicts,
warnings (caveats such as too few dates for the t-tests) and the detailed "model" / "baseline"
blocks (``workflow`` adds ``unscored``, from the rolling plan).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import polars as pl

from kronos_quant.backtest import BENCHMARK_NAME
from kronos_quant.config import StrategyConfig
from kronos_quant.evaluation import scoring
from kronos_quant.evaluation.cells import LABELS
from kronos_quant.evaluation.compare import compare
from kronos_quant.evaluation.run import (
    Protocol,
    Scored,
    baseline_name,
    protocol_for,
    score_baseline,
    score_entry,
)
from kronos_quant.metrics import check_ensemble_size, headline_metrics
from kronos_quant.registry import baseline_kind

__all__ = ["Evaluation", "evaluate_strategy", "ic_table"]

logger = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """metrics (the metrics.json dict), the model and baselines (``run.Scored``, model first), the
    per-date IC table (date, forecaster, ic, rank_ic, n) and the IC label on the cells."""

    metrics: dict[str, Any]
    model: Scored
    baselines: list[Scored]
    ic: pd.DataFrame
    label: pd.DataFrame


def ic_table(entries: list[Scored]) -> pd.DataFrame:
    """The per-date IC and Rank IC of every forecaster: columns date, forecaster, ic, rank_ic, n."""
    frames = [e.series.rename_axis("date").reset_index().assign(forecaster=e.name) for e in entries]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["date", "ic", "rank_ic", "n"])
    return out[["date", "forecaster", "ic", "rank_ic", "n"]]


def _model(proto: Protocol) -> Scored:
    cfg = proto.cfg
    sig = cfg.signal
    return score_entry(proto, name=cfg.model.id, kind="model", display_name=cfg.model.id, signal=sig.name,
                       params=sig.params, transforms=list(sig.transforms), forecasts=proto.cells,
                       n_trials=cfg.evaluation.n_trials)


def _benchmark_row(model: Scored, proto: Protocol) -> dict[str, Any]:
    return {"name": "equal_weight", "kind": "benchmark", "display_name": BENCHMARK_NAME,
            "ic": None, "rank_ic": None, **scoring.benchmark_block(model.backtest, boot=proto.boot)}


SMALL_SAMPLE_DATES = 100  # below this many dates the Newey-West / DM t-tests reject a true null too often


def _warnings(proto: Protocol) -> list[str]:
    """Caveats a reader of the verdicts must see: too few dates for the HAC t-tests to hold their size.

    With fewer than ~100 dates the Newey-West variance is too small on average (its bias and its own
    sampling error are of order lags / n), so the t-tests of the IC, the IC differences, direction and
    the Diebold-Mariano tests reject a true null more often than their level: p-values near 0.05 are weak
    evidence. Counted: the as-of dates with a known label (what those tests average over).
    """
    n = int(proto.label.notna().any(axis=1).sum())
    if n >= SMALL_SAMPLE_DATES:
        return []
    return [f"only {n} dates with a known outcome: with fewer than {SMALL_SAMPLE_DATES} the Newey-West and "
            "Diebold-Mariano tests reject a true null too often (p-values are optimistic); read p near 0.05 as "
            "weak evidence"]


def evaluate_strategy(cfg: StrategyConfig, panel: pl.DataFrame, forecasts: pl.DataFrame, *,
                      baseline_forecasts: Mapping[str, pl.DataFrame] | None = None) -> Evaluation:
    """Score the model (``forecasts``), every enabled baseline and the benchmark on the same cells.

    baseline_forecasts: baseline name (``run.baseline_name``) -> forecast table of each forecasting
    baseline, made by the rolling engine with the strategy's settings. Returns an ``Evaluation``.
    """
    proto = protocol_for(cfg, panel, forecasts)
    h, ev = proto.horizon, cfg.evaluation
    model = _model(proto)
    tables = dict(baseline_forecasts or {})
    baselines = [score_baseline(proto, b, tables.get(baseline_name(b))) for b in cfg.baselines]
    bench = _benchmark_row(model, proto)
    ppy = model.backtest.periods_per_year
    bench_pack = {"row": bench, "series": None, "losses": None,
                  "returns": scoring.active_returns(model.backtest)["benchmark"]}
    mine = model.pack()
    comparisons = [compare(mine, other, horizon=h, rebalance=proto.rebalance, boot=proto.boot, periods_per_year=ppy)
                   for other in [*(b.pack() for b in baselines), bench_pack]]
    quality = model.detail.get("forecast")
    metrics: dict[str, Any] = headline_metrics(model.detail, quality)
    f = cfg.forecast
    metrics.update(
        label=ev.label, label_description=LABELS[ev.label], forecast_target="close t -> close t+h (all forecast scores)",
        horizon=h, rebalance=f.rebalance if isinstance(f.rebalance, int) else "dates", rebalance_bars=proto.rebalance,
        n_trials=ev.n_trials,
        bootstrap={"n_resamples": ev.bootstrap_samples, "block_length": ev.block_length or "automatic",
                   "confidence": ev.confidence, "seed": f.seed},
        ensemble=check_ensemble_size(f.samples, f.quantiles),
        leaderboard=[model.row, *(b.row for b in baselines), bench],
        comparisons=comparisons,
        verdicts=[c["verdict"] for c in comparisons],
        warnings=_warnings(proto),
        model={**model.detail, "forecast": quality},
    )
    if baselines:  # the first baseline in the older layout, for readers of earlier metrics.json files
        first = baselines[0]
        metrics["baseline"] = {"name": first.name, "kind": baseline_kind(cfg.baselines[0].name),
                               **headline_metrics(first.detail, first.detail.get("forecast")), **first.detail}
    for line in metrics["verdicts"]:
        logger.debug("%s", line)
    for line in metrics["warnings"]:
        logger.info("%s", line)  # the summary and the tear sheet show it under the verdicts
    return Evaluation(metrics, model, baselines, ic_table([model, *baselines]), proto.label)
