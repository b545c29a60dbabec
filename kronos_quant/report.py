"""Reports: figures (matplotlib) and files (JSON, Parquet, PNG, one self-contained HTML).

Owns every file write and every figure of a research run. ``plot_*`` functions return a
``matplotlib.figure.Figure`` built with the object-oriented API (no pyplot, no global backend
change, never shown): PNGs are rendered by the Agg canvas, and notebooks display the returned
figures as they are. ``write_report`` writes each file atomically (temporary file + rename).
``summarize_backtest`` turns a ``BacktestResult`` into the metrics dict that the report writes.
Knows nothing about models, forecasting, signal construction or how the backtest simulates.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from kronos_quant.backtest import BacktestResult
from kronos_quant.metrics import (
    drawdown_series,
    ic_summary,
    information_coefficient,
    interval_coverage,
    performance_summary,
    pit_histogram,
    pit_values,
    quantile_returns,
    quantile_spread,
    rank_autocorrelation,
)
from kronos_quant.schema import quantile_column
from kronos_quant.signals import as_pandas
from kronos_quant.utils.atomic import atomic_path, write_json_atomic, write_text_atomic

__all__ = [
    "FIGURES",
    "summarize_backtest",
    "summarize_signal",
    "plot_equity",
    "plot_ic",
    "plot_quantile_returns",
    "plot_forecast_fan",
    "plot_calibration",
    "write_report",
]

logger = logging.getLogger(__name__)

FIGURES: tuple[str, ...] = ("equity", "ic", "quantile_returns", "fan", "calibration")
_BANDS = ((0.05, 0.95, 0.2), (0.25, 0.75, 0.4))  # (low, high, alpha): 90% and 50% bands


# ----------------------------------------------------------------------------- metrics


def summarize_backtest(result: BacktestResult) -> dict[str, Any]:
    """Performance of net, gross and benchmark returns from the first execution bar on.

    Keys: "net" (with benchmark-relative stats and turnover), "gross" (None without a gross run),
    "benchmark", "costs" (total fees, slippage, orders, blocked orders, annual cost drag = gross
    minus net annual return), "periods_per_year". Turnover passed on is the one-way turnover of
    the bars that traded.
    """
    executed = np.flatnonzero(result.targets.notna().any(axis=1).to_numpy())
    start = int(executed[0]) if executed.size else 0
    ppy = result.periods_per_year
    net, bench = result.returns.iloc[start:], result.benchmark_returns.iloc[start:]
    traded = result.turnover.iloc[start:]
    out: dict[str, Any] = {
        "net": performance_summary(net, benchmark=bench, periods_per_year=ppy, turnover=traded[traded > 0]),
        "benchmark": performance_summary(bench, periods_per_year=ppy),
        "gross": None,
        "periods_per_year": ppy,
    }
    costs = {
        "total_fees": float(result.costs["fees"].sum()),
        "total_slippage": float(result.costs["slippage"].sum()),
        "n_orders": int(len(result.orders)),
        "n_blocked_orders": int(result.blocked.to_numpy().sum()),
    }
    if result.gross_returns is not None and result.gross_benchmark_returns is not None:
        gross = result.gross_returns.iloc[start:]
        out["gross"] = performance_summary(gross, benchmark=result.gross_benchmark_returns.iloc[start:],
                                           periods_per_year=ppy)
        costs["annual_cost_drag"] = out["gross"]["annual_return"] - out["net"]["annual_return"]
    out["costs"] = costs
    return out


def summarize_signal(scores: pd.DataFrame, forward_returns: pd.DataFrame, *, n_quantiles: int = 5) -> dict[str, Any]:
    """Signal quality: IC and rank IC summaries, mean top-minus-bottom bucket spread, mean rank autocorrelation.

    scores, forward_returns: wide (dates x instruments), forward_returns[t] realised after t.
    """
    spread = quantile_spread(scores, forward_returns, n_quantiles=n_quantiles)
    autocorr = rank_autocorrelation(scores)
    return {
        "ic": ic_summary(information_coefficient(scores, forward_returns)),
        "rank_ic": ic_summary(information_coefficient(scores, forward_returns, method="spearman")),
        "quantile_spread_mean": float(spread.mean()) if len(spread) else float("nan"),
        "rank_autocorrelation_mean": float(autocorr.mean()) if len(autocorr) else float("nan"),
        "n_quantiles": n_quantiles,
    }


# ----------------------------------------------------------------------------- figures


def plot_equity(result: BacktestResult) -> Figure:
    """Equity (net, gross, benchmark; starting at 1) above the drawdown of net and benchmark."""
    fig = Figure(figsize=(10, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    init = result.init_cash
    top.plot(result.equity.index, result.equity / init, label="strategy (net)", color="C0")
    if result.gross_equity is not None:
        top.plot(result.gross_equity.index, result.gross_equity / init, label="strategy (gross)", color="C0", ls="--")
    top.plot(result.benchmark_equity.index, result.benchmark_equity / init, label="equal-weight benchmark", color="C7")
    top.set_ylabel("equity (start = 1)")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    for series, label, color in ((result.returns, "strategy", "C0"), (result.benchmark_returns, "benchmark", "C7")):
        dd = drawdown_series(series)
        bottom.fill_between(dd.index, dd.to_numpy(), 0.0, color=color, alpha=0.35, label=label)
    bottom.set_ylabel("drawdown")
    bottom.grid(alpha=0.3)
    bottom.tick_params(axis="x", labelrotation=30)
    fig.suptitle("Equity and drawdown")
    return fig


def plot_ic(ic: pd.Series, *, window: int = 20) -> Figure:
    """Per-date IC as bars with its rolling mean over ``window`` dates."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    ic = pd.Series(ic, dtype=np.float64)
    width: Any = 0.8
    if isinstance(ic.index, pd.DatetimeIndex) and len(ic) > 1:
        width = 0.8 * (pd.Series(ic.index).diff().median() / pd.Timedelta(days=1))  # date axis unit: days
    ax.bar(ic.index, ic.to_numpy(), width=width, color=np.where(ic.to_numpy() >= 0, "C2", "C3"), alpha=0.5,
           label="IC")
    rolling = ic.rolling(window, min_periods=1).mean()
    ax.plot(rolling.index, rolling.to_numpy(), color="k", label=f"rolling mean ({window})")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_title(f"{ic.name or 'IC'} over time (mean {np.nanmean(ic.to_numpy()) if len(ic) else np.nan:.4f})")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    ax.tick_params(axis="x", labelrotation=30)
    return fig


def plot_quantile_returns(bucket_returns: pd.DataFrame) -> Figure:
    """Mean forward return per score bucket (left) and cumulative bucket returns over time (right).

    bucket_returns: (T, Q) from ``metrics.quantile_returns`` (columns 1..Q, 1 = lowest scores).
    """
    fig = Figure(figsize=(11, 4), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1, 2))
    means = bucket_returns.mean()
    left.bar([str(c) for c in means.index], means.to_numpy() * 1e4, color="C0")
    left.set_xlabel("score bucket (1 = lowest)")
    left.set_ylabel("mean forward return (bp)")
    left.grid(alpha=0.3)
    growth = (1.0 + bucket_returns.fillna(0.0)).cumprod()
    for col in growth.columns:
        right.plot(growth.index, growth[col].to_numpy(), label=f"Q{col}")
    right.set_ylabel("cumulative (start = 1)")
    right.legend(loc="best", ncol=2)
    right.grid(alpha=0.3)
    right.tick_params(axis="x", labelrotation=30)
    fig.suptitle("Returns by score bucket")
    return fig


def _history(panel: Any, instrument: str, asof: pd.Timestamp, n_bars: int) -> pd.Series:
    df = as_pandas(panel, name="panel")
    df = df.loc[df["instrument"] == instrument, ["timestamp", "close"]]
    series = pd.Series(df["close"].to_numpy(dtype=np.float64), index=pd.to_datetime(df["timestamp"])).sort_index()
    return series.loc[:asof].iloc[-n_bars:]


def plot_forecast_fan(
    forecasts: Any,
    panel: Any = None,
    *,
    instrument: str | None = None,
    asof: Any = None,
    history: int = 60,
) -> Figure:
    """Fan chart of one forecast: close history, median path, mean path, 50% and 90% bands.

    instrument: default the first in the table; asof: default that instrument's last as-of date.
    History (the last ``history`` closes up to asof) is drawn when ``panel`` is given.
    """
    fc = as_pandas(forecasts, name="forecasts")
    fc["asof"] = pd.to_datetime(fc["asof"])
    instrument = instrument if instrument is not None else str(sorted(fc["instrument"].unique())[0])
    rows = fc.loc[fc["instrument"] == instrument]
    if rows.empty:
        raise ValueError(f"instrument {instrument!r} is not in the forecast table")
    when = pd.Timestamp(asof) if asof is not None else rows["asof"].max()
    rows = rows.loc[rows["asof"] == when].sort_values("step")
    if rows.empty:
        raise ValueError(f"no forecast for {instrument!r} as of {when}")
    x = pd.to_datetime(rows["target_timestamp"]) if "target_timestamp" in rows else rows["step"]
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.subplots()
    if panel is not None:
        hist = _history(panel, instrument, when, history)
        ax.plot(hist.index, hist.to_numpy(), color="k", lw=1.2, label="history")
    for lo, hi, alpha in _BANDS:
        lo_col, hi_col = quantile_column("close", lo), quantile_column("close", hi)
        if lo_col in rows and hi_col in rows:
            ax.fill_between(x, rows[lo_col], rows[hi_col], color="C0", alpha=alpha, lw=0,
                            label=f"{round((hi - lo) * 100)}% band")
    if "close_median" in rows:
        ax.plot(x, rows["close_median"], color="C0", lw=1.8, label="median")
    if "close_mean" in rows:
        ax.plot(x, rows["close_mean"], color="C1", lw=1.0, ls="--", label="mean")
    ax.axvline(when, color="grey", lw=0.8)
    ax.set_title(f"{instrument}: forecast as of {when}")
    ax.set_ylabel("close")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    ax.tick_params(axis="x", labelrotation=30)
    return fig


def _realized_close(fc: pd.DataFrame, panel: Any) -> np.ndarray:
    """(n,) close observed at each row's target_timestamp (NaN where the panel has no such bar)."""
    df = as_pandas(panel, name="panel")[["instrument", "timestamp", "close"]]
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    keys = pd.DataFrame({"instrument": fc["instrument"].to_numpy(),
                         "timestamp": pd.to_datetime(fc["target_timestamp"]).to_numpy()})
    merged = keys.merge(df, on=["instrument", "timestamp"], how="left")
    return merged["close"].to_numpy(dtype=np.float64)


def _coverage_by_level(fc: pd.DataFrame, realized: np.ndarray) -> list[tuple[float, float]]:
    """(nominal, observed) coverage of every central interval the close quantile columns allow."""
    levels = []
    for col in fc.columns:
        name = str(col)
        if name.startswith("close_q"):
            try:
                levels.append(round(float(name[len("close_q"):]) / 100.0, 10))
            except ValueError:
                continue
    out = []
    for lo in sorted(q for q in levels if q < 0.5 and round(1 - q, 10) in levels):
        cov = interval_coverage(fc[quantile_column("close", lo)].to_numpy(),
                                fc[quantile_column("close", round(1 - lo, 10))].to_numpy(), realized)
        out.append((1.0 - 2.0 * lo, cov["coverage"]))
    return sorted(out)


def plot_calibration(forecasts: Any, panel: Any, *, n_bins: int = 10) -> Figure:
    """PIT histogram of the realised close within the sample paths (left; needs close_samples) and
    observed vs nominal coverage of the central quantile intervals (right)."""
    fc = as_pandas(forecasts, name="forecasts")
    realized = _realized_close(fc, panel)
    fig = Figure(figsize=(11, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    if "close_samples" in fc.columns:
        width = max((len(s) for s in fc["close_samples"] if s is not None), default=0)
        samples = np.full((len(fc), width), np.nan)
        for i, s in enumerate(fc["close_samples"]):
            if s is not None:
                samples[i, : len(s)] = np.asarray(s, dtype=np.float64)
        counts, edges = pit_histogram(pit_values(samples, realized, rng=0), n_bins=n_bins)
        left.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="C0", edgecolor="white")
        if counts.sum():
            left.axhline(counts.sum() / n_bins, color="k", ls="--", lw=0.8, label="uniform")
            left.legend(loc="upper right")
        left.set_xlabel("PIT")
        left.set_ylabel("count")
    else:
        left.text(0.5, 0.5, "no close_samples in the forecast table", ha="center", va="center")
    left.set_title("PIT histogram")
    pairs = _coverage_by_level(fc, realized)
    right.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8, label="ideal")
    if pairs:
        nominal, observed = zip(*pairs)
        right.plot(nominal, observed, marker="o", color="C1", label="observed")
    right.set_xlim(0, 1)
    right.set_ylim(0, 1)
    right.set_xlabel("nominal coverage")
    right.set_ylabel("observed coverage")
    right.set_title("Interval coverage")
    right.legend(loc="upper left")
    fig.suptitle("Calibration")
    return fig


# ----------------------------------------------------------------------------- writing


def _jsonable(obj: Any) -> Any:
    """Recursively convert numpy/pandas scalars to Python, non-finite floats to None."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, (pd.Timestamp, pd.Timedelta, Path)):
        return str(obj)
    return obj


def _write_parquet(path: Path, frame: Any) -> None:
    with atomic_path(path) as tmp:
        if isinstance(frame, pd.DataFrame):
            out = frame.copy()
            out.columns = [str(c) for c in out.columns]
            out.to_parquet(tmp)
        elif hasattr(frame, "write_parquet"):
            frame.write_parquet(tmp)
        else:
            raise ValueError(f"cannot write {type(frame).__name__} to {path.name}; pass a pandas or polars DataFrame")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _flatten(metrics: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, f"{name}."))
        else:
            rows.append((name, value))
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _html(title: str, metrics: Mapping[str, Any], images: Mapping[str, bytes], config: Any, provenance: Any) -> str:
    rows = "\n".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in _flatten(metrics))
    figs = "\n".join(
        f'<h2>{html.escape(name)}</h2>\n<img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode("ascii")}">' for name, png in images.items()
    )
    dump = {"provenance": provenance, "config": config}
    blocks = "\n".join(
        f"<h2>{key}</h2>\n<pre>{html.escape(json.dumps(_jsonable(value), indent=2, sort_keys=True, default=str))}</pre>"
        for key, value in dump.items() if value is not None
    )
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse}td{border:1px solid #ccc;padding:2px 8px;font-size:13px}"
             "img{max-width:100%}pre{background:#f6f6f6;padding:1em;overflow:auto}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
            f"<h2>metrics</h2>\n<table>\n{rows}\n</table>\n{figs}\n{blocks}\n</body></html>\n")


def _figure_makers(*, backtest: BacktestResult | None, signals: pd.DataFrame | None, forward_returns: pd.DataFrame | None,
                   forecasts: Any, panel: Any, fan_instrument: str | None, n_quantiles: int
                   ) -> dict[str, tuple[str | None, Callable[[], Figure]]]:
    """name -> (missing input or None, maker)."""
    def need(**inputs: Any) -> str | None:
        missing = [k for k, v in inputs.items() if v is None]
        return ", ".join(missing) if missing else None

    return {
        "equity": (need(backtest=backtest), lambda: plot_equity(backtest)),
        "ic": (need(signals=signals, forward_returns=forward_returns),
               lambda: plot_ic(information_coefficient(signals, forward_returns, method="spearman").rename("rank IC"))),
        "quantile_returns": (need(signals=signals, forward_returns=forward_returns),
                             lambda: plot_quantile_returns(quantile_returns(signals, forward_returns,
                                                                            n_quantiles=n_quantiles))),
        "fan": (need(forecasts=forecasts), lambda: plot_forecast_fan(forecasts, panel, instrument=fan_instrument)),
        "calibration": (need(forecasts=forecasts, panel=panel), lambda: plot_calibration(forecasts, panel)),
    }


def write_report(
    output_dir: str | Path,
    *,
    metrics: Mapping[str, Any],
    forecasts: Any = None,
    signals: pd.DataFrame | None = None,
    positions: pd.DataFrame | None = None,
    trades: pd.DataFrame | None = None,
    backtest: BacktestResult | None = None,
    config: Any = None,
    provenance: Mapping[str, Any] | None = None,
    panel: Any = None,
    forward_returns: pd.DataFrame | None = None,
    figures: Sequence[str] | None = None,
    fan_instrument: str | None = None,
    n_quantiles: int = 5,
    title: str = "kronos-quant report",
) -> dict[str, Path]:
    """Write a run's results under ``output_dir``; returns {artifact name: path}.

    Files: metrics.json; provenance.json (config + provenance); forecasts/signals/positions/trades
    .parquet for the inputs given (positions and trades default to the backtest's positions and
    orders; returns.parquet holds its return series); figures/<name>.png; report.html with every
    figure embedded as base64. ``figures``: names from FIGURES; None draws every figure whose inputs
    are present (equity: backtest; ic, quantile_returns: signals + forward_returns (wide, aligned
    with signals); fan: forecasts (+ panel for history); calibration: forecasts + panel). Naming a
    figure whose inputs are missing raises ValueError.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if figures is not None:
        unknown = [f for f in figures if f not in FIGURES]
        if unknown:
            raise ValueError(f"unknown figure(s) {unknown}; choose from {list(FIGURES)}")
    written: dict[str, Path] = {}
    write_json_atomic(out / "metrics.json", _jsonable(dict(metrics)))
    written["metrics"] = out / "metrics.json"
    write_json_atomic(out / "provenance.json", _jsonable({"config": config, "provenance": provenance}))
    written["provenance"] = out / "provenance.json"

    if backtest is not None:
        positions = backtest.positions if positions is None else positions
        trades = backtest.orders if trades is None else trades
        series = {"returns": backtest.returns, "benchmark_returns": backtest.benchmark_returns,
                  "gross_returns": backtest.gross_returns, "gross_benchmark_returns": backtest.gross_benchmark_returns,
                  "equity": backtest.equity, "benchmark_equity": backtest.benchmark_equity,
                  "turnover": backtest.turnover, "costs": backtest.costs["total"]}
        tables: dict[str, Any] = {"returns": pd.DataFrame({k: v for k, v in series.items() if v is not None})}
    else:
        tables = {}
    tables.update({"forecasts": forecasts, "signals": signals, "positions": positions, "trades": trades})
    for name, frame in tables.items():
        if frame is not None:
            _write_parquet(out / f"{name}.parquet", frame)
            written[name] = out / f"{name}.parquet"

    makers = _figure_makers(backtest=backtest, signals=signals, forward_returns=forward_returns, forecasts=forecasts,
                            panel=panel, fan_instrument=fan_instrument, n_quantiles=n_quantiles)
    images: dict[str, bytes] = {}
    for name in figures if figures is not None else FIGURES:
        missing, make = makers[name]
        if missing is not None:
            if figures is not None:
                raise ValueError(f"figure {name!r} needs {missing}; pass it to write_report or leave the figure out")
            logger.debug("figure %s skipped: needs %s", name, missing)
            continue
        png = _png(make())
        with atomic_path(out / "figures" / f"{name}.png") as tmp:
            tmp.write_bytes(png)
        images[name] = png
        written[f"figure_{name}"] = out / "figures" / f"{name}.png"
    write_text_atomic(out / "report.html", _html(title, metrics, images, config, provenance))
    written["html"] = out / "report.html"
    logger.info("report written to %s (%d files)", out, len(written))
    return written
