"""Workflows shared by the CLI, notebooks and the nightly job.

``run_backtest``: data -> rolling forecasts -> signals -> portfolio -> backtest -> metrics -> report.
``evaluate_forecasts``: everything after the forecasts (re-run without model work).
``run_signals``: the nightly job -- forecasts for one as-of date (cached), scores and target
weights for the next session, written atomically and idempotently.
This module wires the layers together; it computes nothing itself.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from kronos_quant import __version__
from kronos_quant.config import StrategyConfig
from kronos_quant.errors import DataError
from kronos_quant.schema import SamplingSpec

__all__ = ["BacktestRun", "SignalsRun", "build_provenance", "check_names", "load_strategy_data", "make_forecaster", "forecast_table",
           "rolling_spec",
           "evaluate_forecasts", "run_backtest", "run_signals", "summary_rows"]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- data and model


def _resolve_path(cfg: StrategyConfig, path: str) -> Path:
    p = Path(path).expanduser()
    if p.exists() or p.is_absolute() or cfg.source_path in (None, "<defaults>", "<config>"):
        return p
    beside = Path(cfg.source_path).parent / p  # relative to the config file
    return beside if beside.exists() else p


def load_strategy_data(cfg: StrategyConfig, *, end: Any = None) -> tuple[pl.DataFrame, Any]:
    """The validated panel of a strategy (synthetic or from a file) and its ValidationReport."""
    from kronos_quant.data import load_panel_with_report, synthetic_market, validate_panel
    from kronos_quant.data.bounds import parse_bound

    d = cfg.data
    end = end if end is not None else d.end
    end = None if end is None else pd.Timestamp(end).date()  # the end bound includes its whole day
    if d.source == "synthetic":
        s = d.synthetic
        panel = synthetic_market(s.n_instruments, s.n_bars, mode=s.mode, strength=s.strength if s.mode == "planted"
                                 else None, start=s.start, seed=s.seed)
        if cfg.universe.instruments:
            panel = panel.filter(pl.col("instrument").is_in(cfg.universe.instruments))
        lo, hi = parse_bound(d.start, tz=None, is_end=False), parse_bound(end, tz=None, is_end=True)
        if lo is not None:
            panel = panel.filter(pl.col("timestamp") >= lo.to_pydatetime())
        if hi is not None:
            panel = panel.filter(pl.col("timestamp") <= hi.to_pydatetime())
        panel, report = validate_panel(panel, source="synthetic market", **d.validation.options())
    else:
        path = _resolve_path(cfg, d.path or "")
        if not path.exists():
            raise DataError(f"data.path: {path} does not exist (from {cfg.source_path}); point data.path at a CSV/"
                            "Parquet file or a directory of per-instrument files")
        panel, report = load_panel_with_report(path, instruments=cfg.universe.instruments, start=d.start, end=end,
                                               **d.load_options())
    if panel.height == 0:
        raise DataError(f"{cfg.source_path}: no data left after the filters (data.start/end, universe.instruments)")
    return panel, report


def make_forecaster(cfg: StrategyConfig) -> Any:
    """The strategy's forecaster (Kronos loaded lazily, or a baseline)."""
    from kronos_quant.forecasters import forecaster_from_config

    return forecaster_from_config(cfg.model)


def rolling_spec(cfg: StrategyConfig, *, rebalance: Any = None, start: Any = None, end: Any = None) -> Any:
    """The ``engine.RollingSpec`` of the strategy's forecasts over [start, end] (default: the backtest period)."""
    from kronos_quant.engine import RollingSpec

    f = cfg.forecast
    return RollingSpec(lookback=f.lookback, horizon=f.horizon, rebalance=f.rebalance if rebalance is None else rebalance,
                       min_history=cfg.universe.min_history, start=cfg.backtest.start if start is None else start,
                       end=cfg.backtest.end if end is None else end,
                       sampling=SamplingSpec(sample_count=f.samples, temperature=f.T, top_k=f.top_k, top_p=f.top_p,
                                             seed=f.seed),
                       quantile_levels=tuple(f.quantiles), keep_samples=f.keep_samples, max_batch_series=f.batch_series)


def forecast_table(cfg: StrategyConfig, panel: pl.DataFrame, forecaster: Any = None, *, rebalance: Any = None,
                   start: Any = None, end: Any = None, quiet: bool | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Rolling forecasts of the strategy over [start, end] (default: the backtest period), with the cache,
    on the configured backend (``forecast.backend``: local or ray). forecaster: default ``make_forecaster(cfg)``.

    Returns (forecast table, stats with cache hits/misses and seconds).
    """
    from kronos_quant.engine import ForecastCache, LocalExecutor, run_rolling

    f = cfg.forecast
    cache = ForecastCache(f.cache_dir) if f.cache_dir else None
    executor: Any = LocalExecutor()
    if f.backend == "ray":
        from kronos_quant.distributed import ray_executor

        executor = ray_executor(cfg)
    t0 = time.perf_counter()
    table = run_rolling(rolling_spec(cfg, rebalance=rebalance, start=start, end=end), panel,
                        make_forecaster(cfg) if forecaster is None else forecaster, executor, cache=cache, quiet=quiet)
    stats = {"seconds": time.perf_counter() - t0, "rows": table.height,
             "forecasts": table.select(["instrument", "asof"]).unique().height if table.height else 0}
    if cache is not None:
        stats.update(cache_hits=cache.stats.hits, cache_misses=cache.stats.misses)
    return table, stats


# ----------------------------------------------------------------------------- evaluation


def _with_actuals(forecasts: pl.DataFrame, panel: pl.DataFrame) -> pd.DataFrame:
    """The forecast table (pandas) with the realised close at each target timestamp (NaN if unknown)."""
    fc = forecasts.to_pandas()
    actual = panel.select(["instrument", "timestamp", "close"]).to_pandas()
    actual = actual.rename(columns={"timestamp": "target_timestamp", "close": "actual_close"})
    fc["target_timestamp"] = pd.to_datetime(fc["target_timestamp"])
    actual["target_timestamp"] = pd.to_datetime(actual["target_timestamp"])
    if fc["target_timestamp"].dt.tz is not None and actual["target_timestamp"].dt.tz is None:
        actual["target_timestamp"] = actual["target_timestamp"].dt.tz_localize(fc["target_timestamp"].dt.tz)
    return fc.merge(actual, on=["instrument", "target_timestamp"], how="left")


def _central_levels(quantiles: list[float]) -> list[float]:
    """The central interval levels (0.5, 0.9) whose both bounds are among the forecast's quantile levels."""
    have = {round(q, 9) for q in quantiles}
    return [lv for lv in (0.5, 0.9) if round((1 - lv) / 2, 9) in have and round((1 + lv) / 2, 9) in have]


def _forecast_quality(fc: pd.DataFrame, horizon: int, quantiles: list[float]) -> dict[str, Any]:
    """Accuracy (vs the random walk) and probabilistic scores at the last step, in return units."""
    from kronos_quant.metrics import crps_ensemble, forecast_accuracy, interval_coverage
    from kronos_quant.schema import quantile_column

    last = fc[(fc["step"] == horizon) & fc["actual_close"].notna()]
    out: dict[str, Any] = {"n_evaluated": int(len(last))}
    if last.empty:
        return out
    acc = forecast_accuracy(last["close_mean"].to_numpy(), last["actual_close"].to_numpy(),
                            last["last_close"].to_numpy())
    out["accuracy"] = acc
    base = last["last_close"].to_numpy()
    obs = last["actual_close"].to_numpy() / base - 1
    if "close_samples" in last.columns:
        samples = np.stack([np.asarray(s, dtype=np.float64) for s in last["close_samples"]]) / base[:, None] - 1
        out["crps"] = float(np.nanmean(crps_ensemble(samples, obs))) if samples.shape[1] > 1 else float("nan")
    for level in _central_levels(quantiles):
        lo, hi = round((1 - level) / 2, 9), round((1 + level) / 2, 9)
        cov = interval_coverage(last[quantile_column("close", lo)].to_numpy() / base - 1,
                                last[quantile_column("close", hi)].to_numpy() / base - 1, obs)
        out[f"coverage_{int(level * 100)}"] = cov["coverage"]
        out[f"width_{int(level * 100)}"] = cov["mean_width"]
    return out


def _calibration(fc: pd.DataFrame, quantiles: list[float]) -> dict[str, Any]:
    from kronos_quant.calibration import coverage_report, recalibrate_walk_forward

    levels = _central_levels(quantiles)
    if not levels or fc["actual_close"].notna().sum() < 100:
        return {}
    cal = recalibrate_walk_forward(fc, levels=levels, min_history=50)
    rep = coverage_report(cal, levels=levels)
    return {str(k): v for k, v in rep.items()}


def _strategy_metrics(cfg: StrategyConfig, panel: pl.DataFrame, scores: pd.DataFrame, fwd: pd.DataFrame
                      ) -> tuple[dict[str, Any], Any, pd.DataFrame]:
    from kronos_quant.backtest import backtest_weights
    from kronos_quant.portfolio import build_weights
    from kronos_quant.report import summarize_backtest, summarize_signal

    p, c = cfg.portfolio, cfg.costs
    weights = build_weights(p.name, scores, max_weight=p.max_weight, cash_buffer=p.cash_buffer, **p.params)
    first = scores.index.min()
    bt_panel = panel.filter(pl.col("timestamp") >= pl.lit(first)) if first is not None else panel
    bt = backtest_weights(bt_panel, weights, init_cash=cfg.backtest.init_cash, fees=c.fees, slippage=c.slippage,
                          min_fee=c.min_fee, price_limit=c.price_limit, periods_per_year=cfg.backtest.periods_per_year)
    sig = summarize_signal(scores, fwd.reindex(index=scores.index, columns=scores.columns))
    perf = summarize_backtest(bt)
    return {"signal": sig, "backtest": perf}, bt, weights


def _headline(block: dict[str, Any], quality: dict[str, Any] | None) -> dict[str, Any]:
    sig, net = block["signal"], block["backtest"]["net"]
    acc = (quality or {}).get("accuracy", {})
    return {
        "ic": sig["ic"]["mean"], "rank_ic": sig["rank_ic"]["mean"], "icir": sig["ic"]["icir"],
        "rank_icir": sig["rank_ic"]["icir"], "mse": acc.get("return_mse", float("nan")),
        "mse_random_walk": acc.get("return_mse_rw", float("nan")),
        "sharpe": net.get("sharpe_ratio"), "max_drawdown": net.get("max_drawdown"),
        "annual_return": net.get("annual_return"), "turnover": net.get("mean_turnover"),
    }


@dataclass
class BacktestRun:
    """Everything a backtest produced (frames are pandas/polars, ready for notebooks)."""

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


def evaluate_forecasts(cfg: StrategyConfig, panel: pl.DataFrame, forecasts: pl.DataFrame, *,
                       provenance: dict[str, Any] | None = None, output_dir: str | Path | None = None,
                       write: bool = True) -> BacktestRun:
    """Signals, portfolio, backtest (model and model-free baseline), metrics and report from a forecast table."""
    from kronos_quant.report import write_report
    from kronos_quant.signals import compute_signal, forward_returns

    if forecasts.height == 0:
        raise DataError("no forecasts in the backtest period: widen backtest.start/end, lower forecast.lookback or "
                        "universe.min_history, or load more history")
    h = cfg.forecast.horizon
    scores = compute_signal(cfg.signal.name, forecasts=forecasts, panel=panel, transforms=cfg.signal.transforms,
                            **cfg.signal.params)
    fwd = forward_returns(panel, horizon=h)
    model_block, bt, weights = _strategy_metrics(cfg, panel, scores, fwd)
    fc = _with_actuals(forecasts, panel)
    quality = _forecast_quality(fc, h, cfg.forecast.quantiles)
    metrics: dict[str, Any] = {}
    metrics.update(_headline(model_block, quality))
    metrics["model"] = {**model_block, "forecast": quality, "calibration": _calibration(fc, cfg.forecast.quantiles)}
    base_bt = None
    if cfg.baseline.enabled:
        base_scores = compute_signal(cfg.baseline.name, forecasts=forecasts, panel=panel, **cfg.baseline.params)
        base_scores = base_scores.reindex(index=scores.index)
        base_block, base_bt, _ = _strategy_metrics(cfg, panel, base_scores, fwd)
        metrics["baseline"] = {"name": cfg.baseline.name, **_headline(base_block, None), **base_block}
    out = Path(output_dir or cfg.output.dir.format(name=cfg.name))
    run = BacktestRun(cfg, metrics, provenance or {}, forecasts, scores, weights, bt, base_bt, panel, output_dir=out)
    if write:
        run.artifacts = write_report(out, metrics=metrics, forecasts=forecasts, signals=scores, backtest=bt,
                                     config=cfg.resolved(), provenance=provenance, panel=panel, forward_returns=fwd,
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
        "python": platform.python_version(), "torch": torch.__version__, "polars": pl.__version__,
        "pandas": pd.__version__, **extra,
    }


def run_backtest(cfg: StrategyConfig, *, output_dir: str | Path | None = None, quiet: bool | None = None,
                 write: bool = True) -> BacktestRun:
    """The whole research loop for one strategy; writes the report directory unless ``write=False``."""
    t0 = time.perf_counter()
    panel, report = load_strategy_data(cfg)
    forecaster = make_forecaster(cfg)
    forecasts, fstats = forecast_table(cfg, panel, forecaster, quiet=quiet)
    prov = build_provenance(cfg, panel, forecaster, report, forecast_stats=fstats,
                       started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                       seconds_to_forecasts=round(time.perf_counter() - t0, 3))
    return evaluate_forecasts(cfg, panel, forecasts, provenance=prov, output_dir=output_dir, write=write)


# ----------------------------------------------------------------------------- nightly signals


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


def _as_of_bar(panel: pl.DataFrame, asof: Any, source: str) -> pd.Timestamp:
    day = pd.Timestamp(asof)
    ts = panel["timestamp"]
    last = ts.max()
    on_day = panel.filter(pl.col("timestamp").dt.date() == day.date())
    if on_day.height == 0:
        raise DataError(f"{source}: no bars on the as-of date {day.date()} (the latest bar is {last}); update the data "
                        "or pass an --asof date that is in the data")
    return pd.Timestamp(on_day["timestamp"].max())


def _write_table(table: pd.DataFrame, path: Path) -> bool:
    """Write atomically unless the file already holds exactly this content; True if written."""
    from kronos_quant.utils.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False, float_format="%.10g")
        if path.exists() and path.read_bytes() == tmp.read_bytes():
            return False
    return True


def run_signals(cfg: StrategyConfig, asof: Any, *, output: str | Path | None = None,
                quiet: bool | None = None, history: int = 20) -> SignalsRun:
    """Scores and target weights for the session after ``asof`` (a date in the data).

    Forecasts are cached, so only what is new is computed; a second run with the same inputs
    writes nothing and does no model work. Portfolios with memory (topk_dropout) replay the last
    ``history`` rebalances so the holdings are reproducible without state files.
    """
    from kronos_quant.data import future_timestamps, infer_panel_calendar
    from kronos_quant.portfolio import build_weights
    from kronos_quant.signals import compute_signal
    from kronos_quant.utils.atomic import write_json_atomic

    source = cfg.data.path or "synthetic market"
    panel, report = load_strategy_data(cfg, end=pd.Timestamp(asof))
    asof_ts = _as_of_bar(panel, asof, source)
    panel = panel.filter(pl.col("timestamp") <= pl.lit(asof_ts))
    forecaster = make_forecaster(cfg)
    dates = [asof_ts]
    if cfg.portfolio.name == "topk_dropout" and isinstance(cfg.forecast.rebalance, int):
        bars = panel["timestamp"].unique().sort()
        k = cfg.forecast.rebalance
        dates = [pd.Timestamp(t) for t in bars.to_list()[::-1][::k][:history]][::-1]
    forecasts, fstats = forecast_table(cfg, panel, forecaster, rebalance=dates, start=dates[0], end=asof_ts, quiet=quiet)
    if forecasts.height == 0:
        raise DataError(f"{source}: no instrument has {cfg.universe.min_history or cfg.forecast.lookback} bars of history "
                        f"up to {asof_ts}; load more history or lower forecast.lookback")
    scores = compute_signal(cfg.signal.name, forecasts=forecasts, panel=panel, transforms=cfg.signal.transforms,
                            **cfg.signal.params)
    p = cfg.portfolio
    weights = build_weights(p.name, scores, max_weight=p.max_weight, cash_buffer=p.cash_buffer, **p.params)
    row_scores = scores.iloc[-1]
    row_weights = weights.reindex(index=scores.index).iloc[-1].fillna(0.0)
    table = pd.DataFrame({"instrument": row_scores.index, "score": row_scores.to_numpy(),
                          "weight": row_weights.reindex(row_scores.index).to_numpy()})
    table = table.dropna(subset=["score"]).sort_values(["score", "instrument"], ascending=[False, True])
    table.insert(2, "rank", np.arange(1, len(table) + 1))
    try:
        nxt = future_timestamps(panel["timestamp"].unique().sort().to_pandas(), 1,
                                calendar=infer_panel_calendar(panel))[0]
    except Exception as exc:  # an irregular calendar: the next session is then unknown
        logger.warning("could not infer the next session after %s: %s", asof_ts, exc)
        nxt = None
    table.insert(0, "asof", asof_ts)
    table.insert(1, "next_session", nxt)
    path = Path(output) if output else Path(cfg.output.signals_file.format(name=cfg.name, asof=asof_ts.date()))
    written = _write_table(table.reset_index(drop=True), path)
    computed = int(fstats.get("cache_misses", fstats["forecasts"]))
    prov = build_provenance(cfg, panel, forecaster, report, asof=str(asof_ts), next_session=str(nxt))
    prov_path = path.with_suffix(path.suffix + ".json")
    if written or not prov_path.exists():
        write_json_atomic(prov_path, {"config": cfg.resolved(), "provenance": prov})
    logger.info("signals for %s: %d instruments, %d forecasts computed, file %s (%s)", asof_ts.date(), len(table),
                computed, path, "written" if written else "unchanged")
    return SignalsRun(table.reset_index(drop=True), path, written, asof_ts, nxt, computed, prov)


# ----------------------------------------------------------------------------- presentation


def summary_rows(metrics: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(label, model value, baseline value) rows for the CLI's summary table."""
    base = metrics.get("baseline", {})
    keys = [("IC", "ic"), ("Rank IC", "rank_ic"), ("ICIR", "icir"), ("Rank ICIR", "rank_icir"),
            ("MSE (h-step return)", "mse"), ("MSE random walk", "mse_random_walk"), ("Sharpe", "sharpe"),
            ("Max drawdown", "max_drawdown"), ("Annual return", "annual_return"), ("Turnover", "turnover")]
    shared = {"mse_random_walk"}  # the random walk is the same reference for both columns
    return [(label, metrics.get(k), metrics.get(k) if k in shared else None if k == "mse" else base.get(k))
            for label, k in keys]


def check_names(cfg: StrategyConfig) -> None:
    """Fail early (ConfigError) on unknown signal, transform, portfolio or baseline names."""
    import difflib

    from kronos_quant.config import ConfigError
    from kronos_quant.portfolio import PORTFOLIOS
    from kronos_quant.signals import SIGNALS, TRANSFORMS

    def check(key: str, name: str, known: Any) -> None:
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(f"{cfg.source_path}: {key}: unknown name '{name}'; {hint}known: {', '.join(known)}")

    check("signal.name", cfg.signal.name, SIGNALS)
    for t in cfg.signal.transforms:
        check("signal.transforms", t, TRANSFORMS)
    check("portfolio.name", cfg.portfolio.name, PORTFOLIOS)
    if cfg.baseline.enabled:
        check("baseline.name", cfg.baseline.name, SIGNALS)
