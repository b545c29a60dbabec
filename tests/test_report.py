"""Report files and figures: every file is written, the HTML embeds every figure once, plot_* return
Figures, and the numbers the figures compute match independent routes (pandas resampling, sklearn)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from matplotlib.figure import Figure

from kronos_quant.backtest import BacktestResult, backtest_weights
from kronos_quant.portfolio import build_weights
from kronos_quant.report import (
    FIGURES,
    plot_calibration,
    plot_drawdown,
    plot_errors_by_step,
    plot_exposure_turnover,
    plot_forecast_fan,
    plot_monthly_returns,
    plot_rank_autocorrelation,
    plot_rolling_sharpe,
    summarize_backtest,
    summarize_signal,
    write_report,
)
from kronos_quant.report.plots_portfolio import monthly_returns, traded_returns
from kronos_quant.schema import DEFAULT_QUANTILES, quantile_column
from kronos_quant.signals import compute_signal, forward_returns
from tests.conftest import make_panel

INSTRUMENTS = ("AAA", "BBB", "CCC", "DDD", "EEE")
STAMPS = pd.bdate_range("2024-01-01", periods=40) + pd.Timedelta(hours=16)  # make_panel's bar times
HORIZON, N_SAMPLES = 3, 16


def _panel() -> pl.DataFrame:
    return make_panel(list(INSTRUMENTS), n_days=len(STAMPS), seed=7, vol=0.015)


def _forecasts(panel: pl.DataFrame) -> pd.DataFrame:
    """A forecast table with sample paths for every instrument at every 2nd bar (random-walk samples)."""
    rng = np.random.default_rng(3)
    closes = panel.to_pandas().pivot(index="timestamp", columns="instrument", values="close")
    rows = []
    for i in range(20, len(STAMPS) - HORIZON, 2):
        for inst in INSTRUMENTS:
            last = float(closes[inst].iloc[i])
            paths = last * np.cumprod(1 + rng.normal(0.001, 0.015, (N_SAMPLES, HORIZON)), axis=1)  # (S, H)
            for h in range(HORIZON):
                s = paths[:, h]
                row = {"instrument": inst, "asof": STAMPS[i], "step": h + 1, "target_timestamp": STAMPS[i + h + 1],
                       "last_close": last, "close_mean": s.mean(), "close_median": np.median(s),
                       "prob_up": float((s > last).mean()), "close_samples": s.tolist()}
                for q in DEFAULT_QUANTILES:
                    row[quantile_column("close", q)] = float(np.quantile(s, q))
                rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def run() -> dict:
    panel = _panel()
    forecasts = _forecasts(panel)
    signals = compute_signal("expected_return", forecasts)
    weights = build_weights("topk", signals, k=2, cash_buffer=0.05)
    result = backtest_weights(panel, weights, init_cash=10_000.0, fees=0.0005, slippage=0.0005)
    flat = signals * 0.0 + np.arange(signals.shape[1])  # a fixed ranking: the same top 2 every time
    baseline = backtest_weights(panel, build_weights("topk", flat, k=2, cash_buffer=0.05), init_cash=10_000.0,
                                fees=0.0005, slippage=0.0005)
    return {"panel": panel, "forecasts": forecasts, "signals": signals, "backtest": result,
            "forward": forward_returns(panel, horizon=1), "baseline": baseline, "baseline_signals": flat}


def test_summarize_backtest(run: dict) -> None:
    result: BacktestResult = run["backtest"]
    summary = summarize_backtest(result)
    assert set(summary) == {"net", "gross", "benchmark", "costs", "periods_per_year"}
    assert summary["net"]["total_return"] < summary["gross"]["total_return"]
    assert summary["costs"]["total_fees"] == pytest.approx(result.orders["fees"].sum())
    assert summary["costs"]["annual_cost_drag"] > 0
    assert summary["periods_per_year"] == 252.0


def test_summarize_signal_on_a_perfect_signal(run: dict) -> None:
    forward = run["forward"]
    summary = summarize_signal(forward.iloc[:-1], forward.iloc[:-1], n_quantiles=5)  # scores = realised returns
    assert summary["rank_ic"]["mean"] == pytest.approx(1.0) and summary["ic"]["mean"] == pytest.approx(1.0)
    assert summary["quantile_spread_mean"] > 0
    noisy = summarize_signal(run["signals"], forward)
    assert -1.0 <= noisy["rank_ic"]["mean"] <= 1.0 and noisy["rank_ic"]["n"] > 0


def test_write_report_writes_every_file(run: dict, tmp_path: Path) -> None:
    result: BacktestResult = run["backtest"]
    metrics = {"backtest": summarize_backtest(result), "note": "toy", "bad": float("nan")}
    written = write_report(
        tmp_path / "report", metrics=metrics, forecasts=run["forecasts"], signals=run["signals"], backtest=result,
        config={"signal": {"name": "expected_return"}}, provenance={"model": "toy-random-walk", "seed": 3},
        panel=run["panel"], forward_returns=run["forward"], baselines={"flat": run["baseline"]},
        baseline_signals={"flat": run["baseline_signals"]},
    )
    out = tmp_path / "report"
    for name in ("metrics.json", "provenance.json", "forecasts.parquet", "signals.parquet", "positions.parquet",
                 "trades.parquet", "returns.parquet", "report.html"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert "figure_reliability" not in written  # drawn only from the leaderboard's prob_up data (absent here)
    for fig in (f for f in FIGURES if f != "reliability"):
        assert written[f"figure_{fig}"] == out / "figures" / f"{fig}.png"
        assert (out / "figures" / f"{fig}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temporary files
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["bad"] is None and saved["note"] == "toy"
    assert saved["backtest"]["net"]["total_return"] == pytest.approx(metrics["backtest"]["net"]["total_return"])
    assert json.loads((out / "provenance.json").read_text())["provenance"]["seed"] == 3
    trades = pd.read_parquet(out / "trades.parquet")
    assert len(trades) == len(result.orders)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "signals.parquet"), run["signals"], check_names=False,
                                  check_freq=False, check_column_type=False)
    html = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(FIGURES) - 1  # each figure once (no reliability data here) (equity in the first screen, the rest in sections)
    assert all(base64.b64decode(img)[:4] == b"\x89PNG" for img in images)
    assert "toy-random-walk" in html and "expected_return" in html
    assert "<h4>backtest.net</h4>" in html and "sharpe_ratio" in html  # every metric, grouped by its block
    assert "Content-Security-Policy" in html and "http://" not in html and "https://" not in html


def test_figure_selection_and_missing_inputs(run: dict, tmp_path: Path) -> None:
    written = write_report(tmp_path, metrics={"x": 1}, backtest=run["backtest"], figures=["equity"])
    assert "figure_equity" in written and "figure_fan" not in written
    assert len(re.findall("data:image/png;base64", (tmp_path / "report.html").read_text())) == 1
    with pytest.raises(ValueError, match="needs forecasts, panel"):
        write_report(tmp_path, metrics={}, figures=["calibration"])
    with pytest.raises(ValueError, match="unknown figure"):
        write_report(tmp_path, metrics={}, figures=["equty"])
    auto = write_report(tmp_path / "minimal", metrics={"x": 1})  # nothing to draw: metrics + html only
    assert set(auto) == {"metrics", "provenance", "html"}


def test_plot_functions_return_figures(run: dict) -> None:
    fan = plot_forecast_fan(run["forecasts"], run["panel"], instrument="BBB")
    assert isinstance(fan, Figure)
    labels = fan.axes[0].get_legend_handles_labels()[1]
    assert {"history", "realised", "median", "mean", "90% band", "50% band"} <= set(labels)
    calib = plot_calibration(pl.from_pandas(run["forecasts"]), run["panel"], attainable_90=0.8)
    assert isinstance(calib, Figure) and len(calib.axes) == 2
    assert {"raw", "recalibrated (walk-forward)", "ideal", "attainable (90%)"} <= set(
        calib.axes[1].get_legend_handles_labels()[1])
    with pytest.raises(ValueError, match="not in the forecast table"):
        plot_forecast_fan(run["forecasts"], instrument="ZZZ")
    drawdown = plot_drawdown(run["backtest"], {"flat": run["baseline"]}, label="model")
    names = [t.split(" (max")[0] for t in drawdown.axes[0].get_legend_handles_labels()[1]]
    assert names == ["model", "flat", "equal-weight buy and hold"]
    starred = plot_errors_by_step(run["forecasts"], run["panel"], dm_per_step=[{"step": 2, "p_value": 0.01},
                                                                              {"step": 3, "p_value": 0.2}])
    assert [t.get_text() for t in starred.axes[0].texts] == ["*"]  # only the step whose DM test is significant
    for fig in (plot_monthly_returns(run["backtest"]), plot_rolling_sharpe(run["backtest"], window=10),
                plot_exposure_turnover(run["backtest"]), plot_errors_by_step(run["forecasts"], run["panel"]),
                plot_rank_autocorrelation({"model": run["signals"], "flat": run["baseline_signals"]})):
        assert isinstance(fig, Figure) and fig.axes


def test_monthly_returns_match_pandas_resampling(run: dict) -> None:
    long = pd.Series(np.random.default_rng(0).normal(0.0005, 0.01, 600), index=pd.bdate_range("2021-03-10", periods=600))
    for returns in (traded_returns(run["backtest"]), long):
        table = monthly_returns(returns)
        expected = (1.0 + returns).resample("ME").prod() - 1.0  # an independent route: calendar resampling
        got = table.stack().dropna()
        assert len(got) == len(expected) and table.shape[1] == 12
        np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_errors_by_step_match_sklearn(run: dict) -> None:
    from sklearn.metrics import mean_squared_error

    from kronos_quant.report.plots_forecast import errors_by_step
    from kronos_quant.schema import join_realized

    realized = join_realized(run["forecasts"], run["panel"]).to_pandas().dropna(subset=["actual_close"])
    table = errors_by_step(join_realized(run["forecasts"], run["panel"])).set_index("step")
    assert list(table.index) == list(range(1, HORIZON + 1))
    for step, part in realized.groupby("step"):
        truth = part["actual_close"] / part["last_close"] - 1.0
        rmse = np.sqrt(mean_squared_error(truth, part["close_mean"] / part["last_close"] - 1.0))
        assert table.loc[step, "rmse"] == pytest.approx(rmse, rel=1e-12)
        assert table.loc[step, "rmse_rw"] == pytest.approx(np.sqrt(mean_squared_error(truth, 0.0 * truth)), rel=1e-12)
        assert table.loc[step, "n"] == len(part)


def test_reliability_figure_is_drawn_from_the_leaderboard_prob_up_curves() -> None:
    from kronos_quant.report.plots_forecast import plot_reliability, reliability_curves

    curve = {"mean_forecast": [0.2, 0.5, float("nan")], "observed_frequency": [0.3, 0.45, float("nan")],
             "count": [10, 20, 0]}
    row = {"prob_up": {"reliability_curve": curve, "reliability_curve_climatology": curve,
                       "reliability_curve_recalibrated": {"count": []}}}
    curves = reliability_curves(row)
    assert list(curves) == ["forecast", "climatology"]  # an empty curve is left out
    ax = plot_reliability(curves).axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_label() in curves]
    assert [ln.get_label() for ln in lines] == ["forecast", "climatology"]
    assert list(lines[0].get_xdata()) == [0.2, 0.5]  # the empty bin is not drawn
    assert reliability_curves({}) == {}

