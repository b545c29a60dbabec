"""Many forecasters, one protocol: the model, every baseline and the benchmark through the same steps.

For each forecaster: scores on the model's cells (``evaluation.cells``), the strategy's transforms,
the strategy's portfolio with ties broken by the untransformed score, the same costs and the same
simulation window; then its leaderboard row (``evaluation.scoring``) and, for baselines and the
benchmark, a comparison with the model (``evaluation.compare``). ``evaluation.leaderboard`` lays
out metrics.json. Forecasting baselines arrive as forecast tables made by the same rolling engine
(the workflow runs them); signal baselines are computed here from the panel.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from kronos_quant.backtest import BacktestResult, backtest_weights
from kronos_quant.config import BaselineConfig, StrategyConfig
from kronos_quant.errors import DataError
from kronos_quant.evaluation import scoring
from kronos_quant.evaluation.cells import (
    backtest_panel,
    cell_mask,
    label_returns,
    on_forecast_cells,
    rebalance_bars,
)
from kronos_quant.market_context import backtest_options
from kronos_quant.metrics import forecast_losses
from kronos_quant.portfolio import build_weights
from kronos_quant.registry import baseline_kind
from kronos_quant.schema import join_realized
from kronos_quant.signals import apply_transforms, compute_signal

__all__ = ["Scored", "Protocol", "baseline_name", "score_entry", "score_baseline", "protocol_for"]

logger = logging.getLogger(__name__)


def baseline_name(entry: BaselineConfig) -> str:
    """A unique, readable name: ``momentum(20, skip 1)``, ``random_walk``, ``linear(n_lags=3)``."""
    p = entry.params
    if entry.name == "momentum":
        return f"momentum({p.get('lookback', 20)}, skip {p.get('skip', 0)})"
    args = ", ".join(f"{k}={v}" for k, v in sorted(p.items()))
    return f"{entry.name}({args})" if args else entry.name


@dataclass
class Scored:
    """One forecaster on the common cells: its scores, strategy, per-date IC and leaderboard row.

    raw / scores: (dates, instruments) before / after the transforms; forecasts: its forecast table
    with ``actual_close`` (None for a signal baseline); series: per-date ic, rank_ic, n; losses:
    ``metrics.forecast_losses`` (None without forecasts); detail: the longer blocks of metrics.json.
    """

    name: str
    kind: str
    display_name: str
    raw: pd.DataFrame
    scores: pd.DataFrame
    forecasts: pl.DataFrame | None
    weights: pd.DataFrame
    backtest: BacktestResult
    series: pd.DataFrame
    losses: pd.DataFrame | None
    row: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    def pack(self) -> dict[str, Any]:
        """What ``compare`` needs."""
        return {"row": self.row, "series": self.series, "losses": self.losses,
                "returns": scoring.active_returns(self.backtest)["net"]}


@dataclass
class Protocol:
    """What every forecaster shares: the cells, the label, the simulation panel, costs and settings."""

    cfg: StrategyConfig
    panel: pl.DataFrame
    cells: pl.DataFrame  # the model's forecast table (its (asof, instrument) pairs are the cells)
    mask: pd.DataFrame  # (dates, instruments) True on the cells
    label: pd.DataFrame  # (dates, instruments) the IC label at the cells' dates
    bt_panel: pl.DataFrame
    horizon: int
    rebalance: int
    boot: scoring.Bootstrap

    def on_cells(self, scores: pd.DataFrame) -> pd.DataFrame:
        return on_forecast_cells(scores, self.mask)


def protocol_for(cfg: StrategyConfig, panel: pl.DataFrame, forecasts: pl.DataFrame) -> Protocol:
    """The shared protocol of a run whose model made ``forecasts``."""
    if forecasts.height == 0:
        raise DataError("no forecasts in the backtest period: widen backtest.start/end, lower forecast.lookback or "
                        "universe.min_history, or load more history")
    ev, h = cfg.evaluation, cfg.forecast.horizon
    mask = cell_mask(forecasts)
    label = label_returns(panel, horizon=h, label=ev.label).reindex(index=mask.index, columns=mask.columns)
    instruments = [str(c) for c in mask.columns]
    bt_panel = backtest_panel(panel, instruments, first=mask.index.min(), end=cfg.backtest.end)
    boot = scoring.Bootstrap(n_resamples=ev.bootstrap_samples, block_length=ev.block_length,
                             confidence=ev.confidence, seed=cfg.forecast.seed)
    return Protocol(cfg, panel, forecasts, mask, label, bt_panel, h, rebalance_bars(cfg.forecast.rebalance, mask.index, panel),
                    boot)


def _on_model_cells(table: pl.DataFrame, cells: pl.DataFrame) -> pl.DataFrame:
    keys = cells.select("instrument", "asof").unique()
    return table.join(keys, on=["instrument", "asof"], how="semi")


def score_entry(proto: Protocol, *, name: str, kind: str, display_name: str, signal: str, params: Mapping[str, Any],
                transforms: list[str], forecasts: pl.DataFrame | None, n_trials: int) -> Scored:
    """Score, trade and summarise one forecaster under ``proto``.

    signal/params: the signal computed from ``forecasts`` (a forecaster) or from the panel (a signal
    baseline, forecasts=None); transforms are applied after the scores are put on the cells, so the
    cross-section is the model's.
    """
    cfg, p = proto.cfg, proto.cfg.portfolio
    table = None if forecasts is None else _on_model_cells(forecasts, proto.cells)
    raw = proto.on_cells(compute_signal(signal, forecasts=table if table is not None else proto.cells,
                                        panel=proto.panel, **params))
    scores = apply_transforms(raw, transforms)
    weights = build_weights(p.name, scores, max_weight=p.max_weight, cash_buffer=p.cash_buffer, tiebreak=raw,
                            **p.params)
    bt = backtest_weights(proto.bt_panel, weights, init_cash=cfg.backtest.init_cash,
                          **backtest_options(cfg, proto.panel))  # costs and trading rules, market preset resolved
    series = scoring.ic_series(scores, proto.label)
    sig = scoring.signal_block(scores, proto.label, series, horizon=proto.horizon, rebalance=proto.rebalance,
                               boot=proto.boot)
    strat, perf = scoring.strategy_block(bt, n_trials=n_trials, boot=proto.boot)
    row: dict[str, Any] = {"name": name, "kind": kind, "display_name": display_name, "ic": sig["ic"],
                           "rank_ic": sig["rank_ic"], "rank_ic_ci": sig["rank_ic_ci"], "return_mse": np.nan,
                           "return_mse_rw": np.nan, "mse_ratio_rw": np.nan, "crps": np.nan,
                           "coverage_90_last_step": None, "coverage_90_all_steps": None, "rank_histogram": None,
                           "prob_up": None}
    detail: dict[str, Any] = {"signal": sig, "backtest": perf}
    realized, losses = None, None
    if table is not None:
        realized = join_realized(table, proto.panel)
        quality, detail["forecast"] = scoring.forecast_block(
            realized, horizon=proto.horizon, quantile_levels=cfg.forecast.quantiles, seed=cfg.forecast.seed)
        row.update(quality)
        row["prob_up"] = scoring.prob_up_block(realized, proto.panel, horizon=proto.horizon, rebalance=proto.rebalance,
                                               window=cfg.evaluation.climatology_window,
                                               method=cfg.evaluation.prob_recalibration, samples=cfg.forecast.samples)
        losses = forecast_losses(realized)
    row.update(strat)
    logger.debug("scored %s (%s): rank IC %.4f", name, kind, sig["rank_ic"]["mean"])
    return Scored(name, kind, display_name, raw, scores, realized, weights, bt, series, losses, row, detail)


def score_baseline(proto: Protocol, entry: BaselineConfig, forecasts: pl.DataFrame | None) -> Scored:
    """A baseline under the protocol: a forecaster's table scored with the strategy's signal, or a
    model-free signal; both with the strategy's transforms unless the entry names its own."""
    sig = proto.cfg.signal
    transforms = sig.transforms if entry.transforms is None else entry.transforms
    name = baseline_name(entry)
    label = name.replace("_", " ")  # random walk, historical drift, momentum(20, skip 1)
    if baseline_kind(entry.name) == "forecaster":
        if forecasts is None:
            raise ValueError(f"baseline {name} is a forecaster: pass its forecast table")
        return score_entry(proto, name=name, kind="baseline", display_name=label,
                           signal=sig.name, params=sig.params, transforms=transforms, forecasts=forecasts, n_trials=1)
    return score_entry(proto, name=name, kind="baseline", display_name=label, signal=entry.name,
                       params=entry.params, transforms=transforms, forecasts=None, n_trials=1)
