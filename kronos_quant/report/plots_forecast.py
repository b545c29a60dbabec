"""Forecast figures: a fan chart with what happened next, errors by horizon step, calibration.

Inputs are the forecast table (pandas or polars; one row per instrument x as-of x step) and the
panel for the realised prices; each ``plot_*`` returns a ``matplotlib.figure.Figure`` (no pyplot,
never shown). Errors and scores are in return units (value / last close - 1), as in
``metrics.score_forecasts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from matplotlib.figure import Figure

from kronos_quant.calibration import coverage_report, recalibrate_walk_forward
from kronos_quant.metrics import crps_ensemble, forecast_accuracy, rank_histogram
from kronos_quant.report.plots_portfolio import COLORS
from kronos_quant.schema import (
    central_intervals,
    join_realized,
    quantile_column,
    quantile_columns,
    sample_matrix,
)
from kronos_quant.signals import as_pandas

__all__ = ["plot_forecast_fan", "plot_errors_by_step", "errors_by_step", "plot_calibration", "coverage_curve",
           "plot_reliability", "reliability_curves"]

_BANDS = ((0.05, 0.95, 0.2), (0.25, 0.75, 0.4))  # (low, high, alpha): 90% and 50% bands


def _closes(panel: pl.DataFrame, instrument: str) -> pd.Series:
    rows = panel.filter(pl.col("instrument") == instrument).sort("timestamp")
    return pd.Series(rows["close"].to_numpy(), index=pd.DatetimeIndex(rows["timestamp"].to_pandas()))


def _default_asof(rows: pd.DataFrame, closes: pd.Series | None) -> pd.Timestamp:
    """The last as-of whose every target bar is in the panel (so the outcome shows), else the last one."""
    if closes is not None and "target_timestamp" in rows:
        known = rows.groupby("asof")["target_timestamp"].max()
        known = known[pd.to_datetime(known.to_numpy()) <= closes.index.max()]
        if len(known):
            return pd.Timestamp(known.index.max())
    return pd.Timestamp(rows["asof"].max())


def plot_forecast_fan(forecasts: Any, panel: Any = None, *, instrument: str | None = None, asof: Any = None,
                      history: int = 40) -> Figure:
    """Fan chart of one forecast: close history, median and mean paths, 50% and 90% bands, and the
    realised closes after the as-of date.

    instrument: default the first in the table; asof: default that instrument's last as-of whose
    outcome is in the panel. History (the last ``history`` closes up to asof) and the realised
    path are drawn when ``panel`` is given.
    """
    fc = as_pandas(forecasts, name="forecasts")
    fc["asof"] = pd.to_datetime(fc["asof"])
    instrument = instrument if instrument is not None else str(sorted(fc["instrument"].unique())[0])
    rows = fc.loc[fc["instrument"] == instrument]
    if rows.empty:
        raise ValueError(f"instrument {instrument!r} is not in the forecast table")
    closes = _closes(panel, instrument) if panel is not None else None
    when = pd.Timestamp(asof) if asof is not None else _default_asof(rows, closes)
    rows = rows.loc[rows["asof"] == when].sort_values("step")
    if rows.empty:
        raise ValueError(f"no forecast for {instrument!r} as of {when}")
    x = list(pd.to_datetime(rows["target_timestamp"])) if "target_timestamp" in rows else list(rows["step"])

    def path(column: str) -> list[Any]:  # the forecast path, anchored at the last close when known
        values = list(rows[column])
        return [rows["last_close"].iloc[0], *values] if "last_close" in rows else values

    if "last_close" in rows:
        x = [when if "target_timestamp" in rows else 0, *x]
    fig = Figure(figsize=(7.0, 3.6), layout="constrained")
    ax = fig.subplots()
    if closes is not None:
        hist = closes.loc[:when].iloc[-history:]
        ax.plot(hist.index, hist.to_numpy(), color="black", lw=1.2, label="history")
        after = closes.loc[when:].iloc[: len(rows) + 1]
        if len(after) > 1:
            ax.plot(after.index, after.to_numpy(), color="black", lw=1.4, ls="--", marker="o", ms=3,
                    label="realised")
    for lo, hi, alpha in _BANDS:
        lo_col, hi_col = quantile_column("close", lo), quantile_column("close", hi)
        if lo_col in rows and hi_col in rows:
            ax.fill_between(x, path(lo_col), path(hi_col), color=COLORS["model"], alpha=alpha, lw=0,
                            label=f"{round((hi - lo) * 100)}% band")
    if "close_median" in rows:
        ax.plot(x, path("close_median"), color=COLORS["model"], lw=1.8, label="median")
    if "close_mean" in rows:
        ax.plot(x, path("close_mean"), color=COLORS["baselines"][0], lw=1.0, ls="--", label="mean")
    ax.axvline(when, color="grey", lw=0.8)
    ax.set_title(f"{instrument}: forecast as of {when.date() if when == when.normalize() else when}", fontsize=11)
    ax.set_ylabel("close")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return fig


def errors_by_step(realized: pl.DataFrame) -> pd.DataFrame:
    """Per horizon step: n, return RMSE of the mean forecast and of the no-change forecast, their MSE ratio,
    and the mean CRPS of the sample paths (NaN without samples). realized: the forecast table with
    ``actual_close`` (``schema.join_realized``)."""
    known = realized.filter(pl.col("actual_close").is_not_null() & pl.col("actual_close").is_not_nan())
    rows = []
    for step in sorted(known["step"].unique().to_list()):
        part = known.filter(pl.col("step") == step)
        last = part["last_close"].to_numpy().astype(np.float64)
        actual = part["actual_close"].to_numpy().astype(np.float64)
        acc = forecast_accuracy(part["close_mean"].to_numpy(), actual, last)
        crps = np.nan
        if "close_samples" in part.columns:
            samples = sample_matrix(part["close_samples"].to_list()) / last[:, None] - 1.0  # (N, S)
            if samples.shape[1] > 1:
                crps = float(np.nanmean(crps_ensemble(samples, actual / last - 1.0)))
        rows.append({"step": int(step), "n": part.height, "rmse": np.sqrt(acc["return_mse"]),
                     "rmse_rw": np.sqrt(acc["return_mse_rw"]), "mse_ratio_rw": acc["return_mse_skill"], "crps": crps})
    return pd.DataFrame(rows, columns=["step", "n", "rmse", "rmse_rw", "mse_ratio_rw", "crps"])


def plot_errors_by_step(forecasts: Any, panel: pl.DataFrame, *, dm_per_step: Sequence[Any] | None = None,
                        label: str = "model") -> Figure:
    """Return RMSE of the mean forecast beside the no-change forecast's (left) and CRPS (right), by horizon step.

    dm_per_step: optional Diebold-Mariano results per step against the random-walk baseline
    ({"step", "statistic", "p_value"}); steps where the MSE difference is significant (p < 0.05) are
    starred. label: the forecaster's name in the legend.
    """
    table = errors_by_step(join_realized(forecasts, panel))
    fig = Figure(figsize=(7.0, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    steps = table["step"].to_numpy()
    left.bar(steps - 0.2, table["rmse"] * 100.0, width=0.4, color=COLORS["model"], label=f"{label} (mean path)")
    left.bar(steps + 0.2, table["rmse_rw"] * 100.0, width=0.4, color=COLORS["benchmark"], label="no-change forecast")
    significant = {int(d.get("step")) for d in dm_per_step or [] if d and (d.get("p_value") or 1.0) < 0.05}
    for step, height in zip(steps, np.maximum(table["rmse"], table["rmse_rw"]) * 100.0):
        if step in significant:
            left.text(step, height, "*", ha="center", va="bottom")
    left.set_xlabel("horizon step (bars)", fontsize=8)
    left.set_ylabel("return RMSE (%)", fontsize=8)
    left.set_title("Point error" + (" (* DM p < 0.05 vs random walk)" if significant else ""), fontsize=10)
    left.legend(loc="upper left", fontsize=8)
    if table["crps"].notna().any():
        right.bar(steps, table["crps"] * 1e4, width=0.6, color=COLORS["model"])
        right.set_ylabel("CRPS (bp of return)", fontsize=8)
    else:
        right.text(0.5, 0.5, "no sample paths: no CRPS", ha="center", va="center", transform=right.transAxes)
    right.set_xlabel("horizon step (bars)", fontsize=8)
    right.set_title("Probabilistic error", fontsize=10)
    for ax in (left, right):
        ax.set_xticks(steps)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Forecast errors by horizon step", fontsize=11)
    return fig


def coverage_curve(realized: pl.DataFrame, *, min_history: int = 50) -> pd.DataFrame:
    """Observed coverage of every central close interval the quantile columns allow, raw and after
    walk-forward recalibration (``calibration.recalibrate_walk_forward``), both on the rows that
    could be recalibrated. Columns: nominal, n, raw, recalibrated (NaN when no row could be)."""
    levels = list(central_intervals(quantile_columns(realized.columns)))
    frame = realized.to_pandas()
    if not levels or frame["actual_close"].notna().sum() < min_history:
        return pd.DataFrame(columns=["nominal", "n", "raw", "recalibrated"])
    report = coverage_report(recalibrate_walk_forward(frame, levels=levels, min_history=min_history), levels=levels)
    return pd.DataFrame([{"nominal": lv, "n": e["n"], "raw": e["coverage_before"], "recalibrated": e["coverage_after"]}
                         for lv, e in report.items()])


def plot_calibration(forecasts: Any, panel: pl.DataFrame, *, attainable_90: float | None = None) -> Figure:
    """Rank histogram of the realised close among the sample paths (left; needs close_samples) and
    observed vs nominal coverage of the central intervals, raw and recalibrated (right).

    attainable_90: the coverage a calibrated forecast with this many samples attains for the 90%
    interval (metrics.json ``coverage_90_all_steps.attainable``), drawn as a marker when given.
    """
    realized = join_realized(forecasts, panel)
    actual = realized["actual_close"].to_numpy().astype(np.float64)  # (n,) NaN where unknown
    fig = Figure(figsize=(7.0, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    hist = rank_histogram(sample_matrix(realized["close_samples"].to_list()), actual) \
        if "close_samples" in realized.columns else {"counts": []}
    if hist["counts"]:
        counts = np.asarray(hist["counts"])
        left.bar(np.arange(counts.size), counts, width=0.9, color=COLORS["model"])
        left.axhline(counts.sum() / counts.size, color="black", ls="--", lw=0.8, label="flat (calibrated)")
        left.set_xlabel(f"rank of the outcome among {hist['n_samples']} samples", fontsize=8)
        left.set_ylabel("count", fontsize=8)
        left.legend(loc="upper center", fontsize=8)
        left.set_title(f"Rank histogram (flatness p {hist['p_value']:.3f})", fontsize=10)
    else:
        left.text(0.5, 0.5, "no sample paths in the forecast table", ha="center", va="center",
                  transform=left.transAxes)
        left.set_title("Rank histogram", fontsize=10)
    curve = coverage_curve(realized)
    right.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8, label="ideal")
    if len(curve):
        right.plot(curve["nominal"], curve["raw"], marker="o", color=COLORS["baselines"][3], label="raw")
        right.plot(curve["nominal"], curve["recalibrated"], marker="s", color=COLORS["baselines"][1],
                   label="recalibrated (walk-forward)")
    else:
        right.text(0.5, 0.3, "too few known outcomes to recalibrate", ha="center", fontsize=8,
                   transform=right.transAxes)
    if attainable_90 is not None:
        right.plot([0.9], [attainable_90], marker="^", ls="none", color="black", label="attainable (90%)")
    right.set_xlim(0, 1)
    right.set_ylim(0, 1)
    right.set_xlabel("nominal coverage", fontsize=8)
    right.set_ylabel("observed coverage", fontsize=8)
    right.set_title("Interval coverage, all steps", fontsize=10)
    right.legend(loc="upper left", fontsize=8)
    fig.suptitle("Calibration", fontsize=11)
    return fig


def reliability_curves(row: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """label -> reliability-diagram data of a leaderboard row's ``prob_up`` block (raw, recalibrated,
    climatology; the ones present)."""
    prob = row.get("prob_up") or {}
    names = (("forecast", "reliability_curve"), ("recalibrated", "reliability_curve_recalibrated"),
             ("climatology", "reliability_curve_climatology"))
    return {label: prob[key] for label, key in names if isinstance(prob.get(key), dict) and prob[key].get("count")}


def plot_reliability(curves: dict[str, dict[str, list[float]]], *, title: str = "prob_up reliability") -> Figure:
    """Reliability diagram: observed up-frequency against the mean forecast per bin, one line per curve.

    curves: label -> ``metrics.reliability_curve`` data (e.g. a leaderboard row's
    ``prob_up["reliability_curve"]``, ``["reliability_curve_recalibrated"]`` and
    ``["reliability_curve_climatology"]``). Empty bins are left out; marker area follows the bin count.
    A calibrated forecast lies on the diagonal.
    """
    fig = Figure(figsize=(6, 6), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="C7", ls="--", lw=1, label="calibrated")
    for i, (label, curve) in enumerate(curves.items()):
        x, y, n = (np.asarray(curve[k], dtype=np.float64) for k in ("mean_forecast", "observed_frequency", "count"))
        ok = np.isfinite(x) & np.isfinite(y) & (n > 0)
        if not ok.any():
            continue
        ax.plot(x[ok], y[ok], marker="o", color=f"C{i}", label=label)
        ax.scatter(x[ok], y[ok], s=20 + 200 * n[ok] / n[ok].max(), color=f"C{i}", alpha=0.4)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="forecast probability of an up move", ylabel="observed up frequency",
           title=title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig
