"""Workflows shared by the CLI, notebooks and the nightly job; each checks the device before any work.

``run_backtest``: data -> rolling forecasts -> signals -> portfolio -> backtest -> metrics -> report.
``evaluate_forecasts`` / ``evaluate_run``: everything after the forecasts, from a table or a report directory.
``run_signals``: the nightly job -- forecasts for one as-of date (cached), scores and target weights for
the next session, written atomically and idempotently. ``run_forecast``: the forecast table only.
This module wires the layers together; it computes nothing itself (metrics: ``metrics``; files: ``report``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

import kronos_quant.market_context as mkt
from kronos_quant._version import __version__
from kronos_quant.config import StrategyConfig
from kronos_quant.errors import ConfigError, DataError
from kronos_quant.run_checks import check_device, check_lookback
from kronos_quant.schema import SamplingSpec

__all__ = ["BacktestRun", "SignalsRun", "ForecastRun", "build_provenance", "check_device", "load_strategy_data",
           "make_forecaster", "rolling_spec", "forecast_table", "baseline_forecasts", "evaluate_forecasts", "evaluate_run",
           "run_backtest", "run_signals", "run_forecast"]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- data and model


def _resolve_path(cfg: StrategyConfig, path: str) -> Path:
    p = Path(path).expanduser()
    if p.exists() or p.is_absolute() or cfg.source_path in (None, "<defaults>", "<config>"):
        return p
    beside = Path(cfg.source_path).parent / p  # relative to the config file
    return beside if beside.exists() else p


def load_strategy_data(cfg: StrategyConfig, *, end: Any = None) -> tuple[pl.DataFrame, Any]:
    """The validated panel of a strategy (synthetic, bundled or from a file), conformed to its market
    (``market_context.conform_to_market``), and its ValidationReport."""
    from kronos_quant.data import load_panel_with_report, synthetic_market, validate_panel
    from kronos_quant.data.bounds import parse_bound

    d, span = cfg.data, ""
    end = end if end is not None else d.end
    end = None if end is None else pd.Timestamp(end).date()  # the end bound includes its whole day
    if d.source == "synthetic":
        s = d.synthetic
        panel = synthetic_market(s.n_instruments, s.n_bars, mode=s.mode, strength=s.strength if s.mode == "planted"
                                 else None, start=s.start, seed=s.seed)
        if cfg.universe.instruments:
            panel = panel.filter(pl.col("instrument").is_in(cfg.universe.instruments))
        if panel.height:
            span = f"; the data runs from {panel['timestamp'].min():%Y-%m-%d} to {panel['timestamp'].max():%Y-%m-%d}"
        lo, hi = parse_bound(d.start, tz=None, is_end=False), parse_bound(end, tz=None, is_end=True)
        if lo is not None:
            panel = panel.filter(pl.col("timestamp") >= lo.to_pydatetime())
        if hi is not None:
            panel = panel.filter(pl.col("timestamp") <= hi.to_pydatetime())
        panel, report = validate_panel(panel, source="synthetic market", **d.validation.options())
    elif d.source == "builtin":
        from kronos_quant.data.builtin import load_builtin_with_report

        panel, report = load_builtin_with_report(d.name or "", instruments=cfg.universe.instruments, start=d.start,
                                                 end=end, **d.load_options())
    else:
        path = _resolve_path(cfg, d.path or "")
        if not path.exists():
            raise DataError(f"data.path: {path} does not exist (from {cfg.source_path}); point data.path at a CSV/"
                            "Parquet file or a directory of per-instrument files")
        panel, report = load_panel_with_report(path, instruments=cfg.universe.instruments, start=d.start, end=end,
                                               **d.load_options())
    if panel.height == 0:
        raise DataError(f"{cfg.source_path}: no data left after the filters (data.start, data.end or --asof, "
                        f"universe.instruments){span}")
    return mkt.conform_to_market(cfg, panel, report), report


def make_forecaster(cfg: StrategyConfig) -> Any:
    """The strategy's forecaster (Kronos loaded lazily, or a baseline)."""
    from kronos_quant.forecasters import forecaster_from_config

    return forecaster_from_config(cfg.model)


def checked_forecaster(cfg: StrategyConfig) -> Any:
    """``make_forecaster(cfg)`` after ``check_device``, with the look-back checked against the model's
    context (``run_checks.check_lookback``): every workflow calls it before loading data or forecasting."""
    check_device(cfg)
    forecaster = make_forecaster(cfg)
    check_lookback(cfg, forecaster)
    return forecaster


def rolling_spec(cfg: StrategyConfig, *, rebalance: Any = None, start: Any = None, end: Any = None) -> Any:
    """The ``engine.RollingSpec`` of the strategy's forecasts over [start, end] (default: the backtest period)."""
    from kronos_quant.engine import RollingSpec

    f = cfg.forecast
    return RollingSpec(lookback=f.lookback, horizon=f.horizon, rebalance=f.rebalance if rebalance is None else rebalance,
                       min_history=cfg.universe.min_history, start=cfg.backtest.start if start is None else start,
                       end=cfg.backtest.end if end is None else end,
                       sampling=SamplingSpec(samples=f.samples, temperature=f.T, top_k=f.top_k, top_p=f.top_p,
                                             seed=f.seed),
                       quantile_levels=tuple(f.quantiles), keep_samples=f.keep_samples, batch_series=f.batch_series)


def forecast_table(cfg: StrategyConfig, panel: pl.DataFrame, forecaster: Any = None, *, rebalance: Any = None,
                   start: Any = None, end: Any = None, quiet: bool | None = None,
                   breaks: Mapping[str, Sequence[Any]] | None = None, backend: str | None = None
                   ) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Rolling forecasts of the strategy over [start, end] (default: the backtest period), with the cache,
    on ``backend`` (default ``forecast.backend``: local or ray). forecaster: default ``make_forecaster(cfg)``.
    breaks: the history breaks of the panel (``ValidationReport.segment_starts()``): no window spans one.

    Returns (forecast table, stats with cache hits/misses, seconds, the plan's counts of windows cut
    or skipped at breaks (``plan``) and why instruments got no forecast (``unplanned``)).
    """
    from kronos_quant.data.arrays import panel_arrays
    from kronos_quant.engine import ForecastCache, LocalExecutor, plan_rolling, run_rolling

    f = cfg.forecast
    cache = ForecastCache(f.cache_dir) if f.cache_dir else None
    executor: Any = LocalExecutor()
    if (backend or f.backend) == "ray":
        from kronos_quant.distributed import ray_executor

        executor = ray_executor(cfg)
    t0 = time.perf_counter()
    spec = rolling_spec(cfg, rebalance=rebalance, start=start, end=end)
    data = panel_arrays(panel, breaks=breaks, calendar=mkt.market_calendar(cfg, panel))  # future skips holidays
    plan = plan_rolling(data, spec)
    table = run_rolling(spec, data, make_forecaster(cfg) if forecaster is None else forecaster, executor,
                        cache=cache, quiet=quiet, plan=plan)
    stats = {"seconds": time.perf_counter() - t0, "rows": table.height,
             "forecasts": table.select(["instrument", "asof"]).unique().height if table.height else 0,
             "plan": plan.counts(), "unplanned": dict(plan.unplanned)}
    if cache is not None:
        stats.update(cache_hits=cache.stats.hits, cache_misses=cache.stats.misses)
    return table, stats


# ----------------------------------------------------------------------------- evaluation


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
    baseline_backtest: Any = None
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

    def _repr_html_(self) -> str:
        """The tear sheet, for notebooks."""
        from kronos_quant.report import run_tearsheet

        return run_tearsheet(self)


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

    tables = baseline_forecasts(cfg, panel, quiet=quiet, breaks=breaks) if baselines is None else baselines
    ev = evaluate_strategy(cfg, panel, forecasts, baseline_forecasts=tables)
    m = ev.metrics
    scored = ev.model.scores.columns[ev.model.scores.notna().any().to_numpy()]
    m["unscored"] = unscored_in_run(cfg, panel, forecasts, scored, provenance)
    prov = {**(provenance or {}), "evaluation": {
        "label": m["label"], "label_description": m["label_description"], "n_trials": m["n_trials"],
        "bootstrap": m["bootstrap"], "baselines": [b.name for b in ev.baselines]}}
    out = Path(output_dir or cfg.output.dir.format(name=cfg.name))
    first = ev.baselines[0].backtest if ev.baselines else None
    run = BacktestRun(cfg, m, prov, forecasts, ev.model.scores, ev.model.weights, ev.model.backtest, first, panel,
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


def build_provenance(cfg: StrategyConfig, panel: pl.DataFrame, forecaster: Any, report: Any, **extra: Any) -> dict[str, Any]:
    import torch

    from kronos_quant.data import data_fingerprint

    return {
        "kronos_quant": __version__, "config_file": cfg.source_path, "model": forecaster.identity,
        "seed": cfg.forecast.seed, "data_fingerprint": data_fingerprint(panel),
        "data": {"instruments": panel["instrument"].n_unique(), "rows": panel.height,
                 "first": str(panel["timestamp"].min()), "last": str(panel["timestamp"].max())},
        "validation": report.to_dict() if hasattr(report, "to_dict") else None,
        "market": mkt.market_provenance(cfg, panel),
        "python": platform.python_version(), "torch": torch.__version__, "polars": pl.__version__,
        "pandas": pd.__version__, **extra,
    }


def run_backtest(cfg: StrategyConfig, *, output_dir: str | Path | None = None, quiet: bool | None = None,
                 write: bool = True) -> BacktestRun:
    """The whole research loop for one strategy; writes the report directory unless ``write=False``."""
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


# ----------------------------------------------------------------------------- one as-of date


def _as_of_bar(panel: pl.DataFrame, asof: Any, source: str) -> pd.Timestamp:
    """The last bar of the panel on the date of ``asof`` (DataError naming the latest bar when none)."""
    day = pd.Timestamp(asof)
    on_day = panel.filter(pl.col("timestamp").dt.date() == day.date())
    if on_day.height == 0:
        raise DataError(f"{source}: no bars on the as-of date {day.date()} (the latest bar is "
                        f"{panel['timestamp'].max()}); update the data or pass an --asof date that is in the data")
    return pd.Timestamp(on_day["timestamp"].max())


@dataclass
class SignalsRun:
    """The nightly output: one row per instrument with score, rank and target weight."""

    table: pd.DataFrame
    path: Path | None
    written: bool
    asof: pd.Timestamp
    next_session: pd.Timestamp | None
    forecasts_computed: int
    provenance: dict[str, Any]


def run_signals(cfg: StrategyConfig, asof: Any, *, output: str | Path | None = None,
                quiet: bool | None = None, history: int = 20, force: bool = False) -> SignalsRun:
    """Scores and target weights for the session after ``asof`` (a date in the data).

    Forecasts are cached, so only what is new is computed; a second run with the same inputs
    writes nothing and does no model work. Portfolios with memory (topk_dropout) replay the last
    ``history`` rebalances so the holdings are reproducible without state files. A published file
    with other content (another seed, model or data) is replaced only with ``force`` (else
    ConfigError); the provenance beside it then lists the sha256 of every file it replaced. The
    provenance also lists the instruments without a score and why (``unscored``).
    """
    from kronos_quant.evaluation import on_forecast_cells
    from kronos_quant.portfolio import build_weights
    from kronos_quant.report.publish import publish_table
    from kronos_quant.run_checks import stale_at, unscored_in_run
    from kronos_quant.signals import apply_transforms, compute_signal
    from kronos_quant.utils.atomic import write_json_atomic

    forecaster = checked_forecaster(cfg)
    source = cfg.data.label()
    panel, report = load_strategy_data(cfg, end=pd.Timestamp(asof))
    asof_ts = _as_of_bar(panel, asof, source)
    panel = panel.filter(pl.col("timestamp") <= pl.lit(asof_ts))
    dates = [asof_ts]
    if cfg.portfolio.name == "topk_dropout" and isinstance(cfg.forecast.rebalance, int):
        bars = panel["timestamp"].unique().sort()
        k = cfg.forecast.rebalance
        dates = [pd.Timestamp(t) for t in bars.to_list()[::-1][::k][:history]][::-1]
    forecasts, fstats = forecast_table(cfg, panel, forecaster, rebalance=dates, start=dates[0], end=asof_ts,
                                      quiet=quiet, breaks=report.segment_starts())
    if forecasts.height == 0:
        raise DataError(f"{source}: no instrument has {cfg.universe.min_history or cfg.forecast.lookback} bars of history "
                        f"up to {asof_ts}; load more history or lower forecast.lookback")
    raw = on_forecast_cells(compute_signal(cfg.signal.name, forecasts=forecasts, panel=panel, **cfg.signal.params),
                            forecasts)
    scores = apply_transforms(raw, cfg.signal.transforms)
    p = cfg.portfolio
    weights = build_weights(p.name, scores, max_weight=p.max_weight, cash_buffer=p.cash_buffer, tiebreak=raw,
                            **p.params)
    row_scores = scores.iloc[-1]
    row_weights = weights.reindex(index=scores.index).iloc[-1].fillna(0.0)
    table = pd.DataFrame({"instrument": row_scores.index, "score": row_scores.to_numpy(),
                          "weight": row_weights.reindex(row_scores.index).to_numpy(), "_raw": raw.iloc[-1].to_numpy()})
    table = table.dropna(subset=["score"]).sort_values(["score", "_raw", "instrument"], ascending=[False, False, True])
    tied = table.duplicated(["score", "_raw"]).to_numpy()  # tied on both: the same rank (the name never decides)
    table.insert(2, "rank", pd.Series(np.where(tied, np.nan, np.arange(1, len(table) + 1))).ffill().astype(int).to_numpy())
    table = table.drop(columns="_raw")
    nxt = mkt.next_session(cfg, panel)  # on the market's exchange calendar (holidays skipped)
    table.insert(0, "asof", asof_ts)
    table.insert(1, "next_session", nxt)
    path = Path(output) if output else Path(cfg.output.signals_file.format(name=cfg.name, asof=asof_ts.date()))
    published = publish_table(table.reset_index(drop=True), path, force=force, what=f"signals for {asof_ts.date()}")
    written, computed = published.written, int(fstats.get("cache_misses", fstats["forecasts"]))
    unscored = unscored_in_run(cfg, panel, forecasts.filter(pl.col("asof") == pl.lit(asof_ts)), table["instrument"],
                               {"validation": report.to_dict()}, {**fstats["unplanned"], **stale_at(panel, asof_ts)})
    prov = build_provenance(cfg, panel, forecaster, report, asof=str(asof_ts), next_session=str(nxt),
                            forecast_stats=fstats, unscored=unscored, **published.provenance())
    if written or not published.provenance_path.exists():
        write_json_atomic(published.provenance_path, {"config": cfg.resolved(), "provenance": prov})
    logger.info("signals for %s: %d instruments, %d forecasts computed, file %s (%s)", asof_ts.date(), len(table),
                computed, path, "written" if written else "unchanged")
    return SignalsRun(table.reset_index(drop=True), path, written, asof_ts, nxt, computed, prov)


@dataclass
class ForecastRun:
    """The forecast table of ``run_forecast``, where it was written and how much model work it took."""

    table: pl.DataFrame
    path: Path
    stats: dict[str, Any]
    provenance: dict[str, Any]


def run_forecast(cfg: StrategyConfig, asof: Any = None, *, output: str | Path | None = None,
                 quiet: bool | None = None) -> ForecastRun:
    """Forecasts as of the last bar on date ``asof`` (or over the backtest period when None), written
    atomically with a ``.json`` of config and provenance beside it.

    output: a .parquet or .csv file (CSV leaves out the sample lists); default
    ``<output.dir>/forecasts_<asof>.parquet`` (``forecasts_backtest.parquet`` without ``asof``).
    """
    from kronos_quant.report.writer import write_forecast_table
    from kronos_quant.utils.atomic import write_json_atomic

    if output is not None and Path(output).suffix not in (".parquet", ".csv"):
        raise ConfigError(f"--output {output}: the forecast table is written as .parquet or .csv")
    forecaster = checked_forecaster(cfg)
    panel, report = load_strategy_data(cfg, end=None if asof is None else pd.Timestamp(asof))
    window: dict[str, Any] = {}
    if asof is not None:
        bar = _as_of_bar(panel, asof, cfg.data.label())
        window = dict(rebalance=[bar], start=bar, end=bar)
    table, stats = forecast_table(cfg, panel, forecaster, quiet=quiet, breaks=report.segment_starts(), **window)
    label = pd.Timestamp(asof).date() if asof is not None else "backtest"
    path = Path(output) if output else Path(cfg.output.dir.format(name=cfg.name)) / f"forecasts_{label}.parquet"
    write_forecast_table(table, path)
    prov = build_provenance(cfg, panel, forecaster, report, asof=None if asof is None else str(window["end"]),
                            forecast_stats=stats)
    write_json_atomic(path.with_suffix(path.suffix + ".json"), {"config": cfg.resolved(), "provenance": prov})
    logger.info("forecasts: %d rows (%d forecasts) written to %s", table.height, stats["forecasts"], path)
    return ForecastRun(table, path, stats, prov)
