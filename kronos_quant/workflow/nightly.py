"""One as-of date: the nightly signals and the forecast table.

``run_signals``: forecasts for one as-of date (cached), scores and target weights for the next
session, written atomically and idempotently. ``run_forecast``: the forecast table only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

import kronos_quant.market_context as mkt
from kronos_quant.config import StrategyConfig
from kronos_quant.data.report import fmt_time
from kronos_quant.errors import ConfigError, DataError
from kronos_quant.workflow.data import (
    build_provenance,
    checked_forecaster,
    forecast_table,
    load_strategy_data,
)

__all__ = ["SignalsRun", "ForecastRun", "run_signals", "run_forecast"]

logger = logging.getLogger(__name__)


def _as_of_bar(panel: pl.DataFrame, asof: Any, source: str) -> pd.Timestamp:
    """The last bar of the panel on the date of ``asof`` (DataError naming the latest bar when none)."""
    day = pd.Timestamp(asof)
    on_day = panel.filter(pl.col("timestamp").dt.date() == day.date())
    if on_day.height == 0:
        raise DataError(f"{source}: no bars on the as-of date {day.date()} (the latest bar is "
                        f"{panel['timestamp'].max()}); update the data or pass an --asof date that is in the data")
    return pd.Timestamp(on_day["timestamp"].max())


def _check_history(cfg: StrategyConfig, panel: pl.DataFrame, asof: pd.Timestamp, source: str) -> None:
    """DataError before any forecasting when no instrument of ``panel`` (the bars up to ``asof``) has the
    bars a forecast needs (``universe.min_history``, default ``forecast.lookback``), naming the first
    usable as-of date of the whole data."""
    need = cfg.universe.min_history or cfg.forecast.lookback
    have = int(panel.group_by("instrument").len()["len"].max() or 0)
    if have >= need:
        return
    full, _ = load_strategy_data(cfg)  # only on this error path: the data past the as-of date
    nth = full.group_by("instrument").agg(pl.col("timestamp").sort().slice(need - 1, 1).first())["timestamp"]
    first = (f"the first usable --asof is {nth.min():%Y-%m-%d} (the first date with {need} bars)"
             if nth.drop_nulls().len() else f"no instrument has {need} bars in the whole data")
    fix = "forecast.lookback or universe.min_history set how many bars a forecast needs"
    if panel["timestamp"].n_unique() <= 1:
        raise DataError(f"{source}: no history precedes the as-of date {asof.date()}, the first date in the data; "
                        f"{first}; {fix}")
    raise DataError(f"{source}: no instrument has {need} bars of history up to {fmt_time(asof)} (at most {have}); {first}; "
                    f"{fix}")


@dataclass
class SignalsRun:
    """The nightly output: one row per instrument with score, rank and target weight.

    next_session_basis: how the next session's date is known (``market_context.NextSession``: the exchange
    code, ``trading.holidays``, ``every day`` or ``inferred``); next_session_warning: why it is not
    confirmed, or None.
    """

    table: pd.DataFrame
    path: Path | None
    written: bool
    asof: pd.Timestamp
    next_session: pd.Timestamp | None
    forecasts_computed: int
    provenance: dict[str, Any]
    next_session_basis: str = "unknown"
    next_session_warning: str | None = None

    @property
    def unscored_summary(self) -> str:
        """``"2 not scored: too little history"`` from the provenance's ``unscored`` list ("" if none)."""
        from kronos_quant.run_checks import unscored_line

        return unscored_line(self.provenance.get("unscored") or [])


def run_signals(cfg: StrategyConfig, asof: Any, *, output: str | Path | None = None,
                quiet: bool | None = None, history: int = 20, force: bool = False) -> SignalsRun:
    """Scores and target weights for the session after ``asof`` (a date in the data).

    The table's ``next_session_basis`` says how the next session's date is known (``inferred``: from the
    data only, e.g. past the exchange calendar's last year; list closures in ``trading.holidays``).
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
    _check_history(cfg, panel, asof_ts, source)
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
    session = mkt.next_session(cfg, panel)  # on the market's exchange calendar (holidays skipped)
    nxt = session.timestamp
    table.insert(0, "asof", asof_ts)
    table.insert(1, "next_session", nxt)
    table.insert(2, "next_session_basis", session.basis)  # "inferred": not confirmed by an exchange calendar
    path = Path(output) if output else Path(cfg.output.signals_file.format(name=cfg.name, asof=asof_ts.date()))
    published = publish_table(table.reset_index(drop=True), path, force=force, what=f"signals for {asof_ts.date()}")
    written, computed = published.written, int(fstats.get("cache_misses", fstats["forecasts"]))
    unscored = unscored_in_run(cfg, panel, forecasts.filter(pl.col("asof") == pl.lit(asof_ts)), table["instrument"],
                               {"validation": report.to_dict()}, {**fstats["unplanned"], **stale_at(panel, asof_ts)})
    prov = build_provenance(cfg, panel, forecaster, report, asof=str(asof_ts), next_session=str(nxt),
                            next_session_basis=session.basis, next_session_warning=session.warning,
                            forecast_stats=fstats, unscored=unscored, **published.provenance())
    if written or not published.provenance_path.exists():
        write_json_atomic(published.provenance_path, {"config": cfg.resolved(), "provenance": prov})
    logger.info("signals for %s: %d instruments, %d forecasts computed, file %s (%s)", asof_ts.date(), len(table),
                computed, path, "written" if written else "unchanged")
    return SignalsRun(table.reset_index(drop=True), path, written, asof_ts, nxt, computed, prov, session.basis,
                      session.warning)


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
        _check_history(cfg, panel.filter(pl.col("timestamp") <= pl.lit(bar)), bar, cfg.data.label())
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
