"""The research loop: a strategy's backtest from data to report, and its re-evaluation from saved forecasts.

``run_backtest``: data -> rolling forecasts -> signals -> portfolio -> backtest -> metrics -> report.
``evaluate_forecasts`` / ``evaluate_run``: everything after the forecasts, from a table or a report
directory. ``baseline_forecasts``: the forecasting baselines' tables. The scoring itself lives in
``kronos_quant.evaluation``, the files in ``kronos_quant.report``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

import kronos_quant.market_context as mkt
from kronos_quant.config import StrategyConfig
from kronos_quant.errors import DataError
from kronos_quant.workflow.data import (
    build_provenance,
    checked_forecaster,
    forecast_table,
    load_strategy_data,
)

__all__ = ["BacktestRun", "baseline_forecasts", "evaluate_forecasts", "run_backtest", "evaluate_run"]


@dataclass
class BacktestRun:
    """Everything a backtest produced (frames are pandas/polars, ready for notebooks).

    scores/weights/backtest: the strategy's; baselines: name -> ``evaluation.run.Scored`` (scores,
    weights, backtest, per-date IC of each baseline); ic: the per-date IC table of every forecaster.
    """

    config: StrategyConfig
    metrics: dict[str, Any]
    provenance: dict[str, Any]
    forecasts: pl.DataFrame
    scores: pd.DataFrame
    weights: pd.DataFrame
    backtest: Any
    panel: pl.DataFrame | None = None
    artifacts: dict[str, Path] = field(default_factory=dict)
    output_dir: Path | None = None
    baselines: dict[str, Any] = field(default_factory=dict)
    ic: pd.DataFrame | None = None
    forward_returns: pd.DataFrame | None = None

    def figures(self, names: list[str] | None = None) -> dict[str, Any]:
        """The report's figures as matplotlib ``Figure`` objects by name (default: all this run can draw)."""
        from kronos_quant.report import run_figures

        return run_figures(self, names)

    def summary(self, title: str | None = None, *, width: int = 120) -> str:
        """The terminal summary (what ``kronos-quant backtest`` prints): run facts with the simulated
        period, the headline table and the verdict lines, ``width`` columns. title: default
        '<strategy name>: <model id>'."""
        from kronos_quant.report import render_summary
        from kronos_quant.report.facts import backtest_period

        return render_summary(self.metrics, title or f"{self.config.name}: {self.config.model.id}",
                              config=self.config.resolved(), provenance=self.provenance,
                              period=backtest_period(self.backtest), width=width)

    def _repr_html_(self) -> str:
        """The tear sheet, for notebooks."""
        from kronos_quant.report import run_tearsheet

        return run_tearsheet(self)


def _run_dir(cfg: StrategyConfig, output_dir: str | Path | None, *, write: bool) -> Path:
    """The report directory of a run (``output_dir`` or ``output.dir``); when ``write``, checked to take a
    report (ConfigError otherwise) before any forecasting."""
    from kronos_quant.report.writer import check_report_dir

    out = Path(output_dir or cfg.output.dir.format(name=cfg.name))
    if write:
        check_report_dir(out)
    return out


def baseline_forecasts(cfg: StrategyConfig, panel: pl.DataFrame, *, quiet: bool | None = None,
                       breaks: Mapping[str, Sequence[Any]] | None = None) -> dict[str, pl.DataFrame]:
    """Forecast tables of the forecasting baselines (random_walk, historical_drift, linear): the same
    rolling spec, sampling and cache as the model, always on the local backend (they are cheap)."""
    from kronos_quant.evaluation import baseline_name
    from kronos_quant.forecasters import BASELINES
    from kronos_quant.registry import baseline_kind

    return {baseline_name(b): forecast_table(cfg, panel, BASELINES[b.name](**b.params), quiet=quiet,
                                             breaks=breaks, backend="local")[0]
            for b in cfg.baselines if baseline_kind(b.name) == "forecaster"}


def evaluate_forecasts(cfg: StrategyConfig, panel: pl.DataFrame, forecasts: pl.DataFrame, *,
                       provenance: dict[str, Any] | None = None, output_dir: str | Path | None = None,
                       write: bool = True, baselines: dict[str, pl.DataFrame] | None = None,
                       quiet: bool | None = None, breaks: Mapping[str, Sequence[Any]] | None = None) -> BacktestRun:
    """Signals, portfolio, backtest, metrics and report of the model and every baseline from a forecast
    table (``kronos_quant.evaluation``); baselines: the forecasting baselines' tables (default: made
    with ``baseline_forecasts``, from the cache when present)."""
    from kronos_quant.evaluation import evaluate_strategy
    from kronos_quant.report import write_report
    from kronos_quant.run_checks import unscored_in_run

    out = _run_dir(cfg, output_dir, write=write)
    tables = baseline_forecasts(cfg, panel, quiet=quiet, breaks=breaks) if baselines is None else baselines
    ev = evaluate_strategy(cfg, panel, forecasts, baseline_forecasts=tables)
    m = ev.metrics
    scored = ev.model.scores.columns[ev.model.scores.notna().any().to_numpy()]
    m["unscored"] = unscored_in_run(cfg, panel, forecasts, scored, provenance)
    prov = {**(provenance or {}), "evaluation": {
        "label": m["label"], "label_description": m["label_description"], "n_trials": m["n_trials"],
        "bootstrap": m["bootstrap"], "baselines": [b.name for b in ev.baselines]}}
    run = BacktestRun(cfg, m, prov, forecasts, ev.model.scores, ev.model.weights, ev.model.backtest, panel,
                      output_dir=out, baselines={b.name: b for b in ev.baselines}, ic=ev.ic,
                      forward_returns=ev.label)
    if write:
        run.artifacts = write_report(out, metrics=m, forecasts=forecasts, signals=ev.model.scores,
                                     backtest=ev.model.backtest, config=cfg.resolved(), provenance=prov, panel=panel,
                                     forward_returns=ev.label, ic=ev.ic, baselines={b.name: b.backtest for b in ev.baselines},
                                     baseline_signals={b.name: b.scores for b in ev.baselines},
                                     fan_instrument=cfg.output.fan_instrument,
                                     figures=None if cfg.output.figures else [], title=f"kronos-quant: {cfg.name}")
    return run


def run_backtest(cfg: StrategyConfig, *, output_dir: str | Path | None = None, quiet: bool | None = None,
                 write: bool = True) -> BacktestRun:
    """The whole research loop for one strategy; writes the report directory unless ``write=False``
    (checked before any forecasting: ``report.writer.check_report_dir``)."""
    _run_dir(cfg, output_dir, write=write)
    forecaster = checked_forecaster(cfg)
    t0 = time.perf_counter()
    panel, report = load_strategy_data(cfg)
    mkt.check_backtest_period(cfg, panel)
    forecasts, fstats = forecast_table(cfg, panel, forecaster, quiet=quiet, breaks=report.segment_starts())
    prov = build_provenance(cfg, panel, forecaster, report, forecast_stats=fstats,
                            started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                            seconds_to_forecasts=round(time.perf_counter() - t0, 3))
    return evaluate_forecasts(cfg, panel, forecasts, provenance=prov, output_dir=output_dir, write=write, quiet=quiet,
                              breaks=report.segment_starts())


def evaluate_run(run_dir: str | Path, *, overrides: list[str] | None = None, output_dir: str | Path | None = None
                 ) -> BacktestRun:
    """Re-evaluate a report directory of ``run_backtest`` from its saved forecasts and config (no model
    work); ``overrides`` (``key.path=value``) change the saved config, except what the forecasts
    depend on (model, forecast, data, universe, backtest period: ConfigError); the new report goes
    to ``output_dir`` (default: ``run_dir`` itself)."""
    from kronos_quant.config import apply_overrides, config_from_dict
    from kronos_quant.run_checks import check_evaluate_overrides

    run_dir = Path(run_dir)
    prov_file, fc_file = run_dir / "provenance.json", run_dir / "forecasts.parquet"
    for f in (prov_file, fc_file):
        if not f.is_file():
            raise DataError(f"{f} not found; pass a directory written by `kronos-quant backtest`")
    saved = json.loads(prov_file.read_text())
    cfg = config_from_dict(apply_overrides(saved["config"], overrides), source=str(prov_file))
    check_evaluate_overrides(config_from_dict(saved["config"], source=str(prov_file)), cfg, overrides)
    panel, report = load_strategy_data(cfg)
    return evaluate_forecasts(cfg, panel, pl.read_parquet(fc_file), provenance=saved.get("provenance"),
                              output_dir=output_dir or run_dir, breaks=report.segment_starts())


