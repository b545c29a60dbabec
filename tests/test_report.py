"""Report: every file is written, the HTML embeds every figure, plot_* return Figures."""

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
    plot_forecast_fan,
    summarize_backtest,
    summarize_signal,
    write_report,
)
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
    return {"panel": panel, "forecasts": forecasts, "signals": signals, "backtest": result,
            "forward": forward_returns(panel, horizon=1)}


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
        panel=run["panel"], forward_returns=run["forward"],
    )
    out = tmp_path / "report"
    for name in ("metrics.json", "provenance.json", "forecasts.parquet", "signals.parquet", "positions.parquet",
                 "trades.parquet", "returns.parquet", "report.html"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for fig in FIGURES:
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
    assert len(images) == len(FIGURES)
    assert all(base64.b64decode(img)[:4] == b"\x89PNG" for img in images)
    assert "toy-random-walk" in html and "expected_return" in html and "backtest.net.sharpe_ratio" in html


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
    assert {"history", "median", "mean", "90% band", "50% band"} <= set(labels)
    calib = plot_calibration(pl.from_pandas(run["forecasts"]), run["panel"])
    assert isinstance(calib, Figure) and len(calib.axes) == 2
    with pytest.raises(ValueError, match="not in the forecast table"):
        plot_forecast_fan(run["forecasts"], instrument="ZZZ")


def test_summary_rows_and_rendered_table() -> None:
    from kronos_quant.report import format_value, render_summary, summary_rows

    metrics = {"ic": 0.0512345, "rank_ic": 0.04, "icir": 0.3, "rank_icir": 0.2, "mse": 1e-4, "mse_random_walk": 2e-4,
               "sharpe": float("nan"), "max_drawdown": -0.1, "annual_return": 0.05, "turnover": None,
               "baseline": {"name": "momentum", "ic": 0.01, "sharpe": 0.5, "mse": 9.0}}
    rows = {label: (model, base) for label, model, base in summary_rows(metrics)}
    assert rows["IC"] == (0.0512345, 0.01) and rows["Sharpe"][1] == 0.5
    assert rows["MSE (h-step return)"] == (1e-4, None)  # the baseline forecasts nothing
    assert rows["MSE random walk"] == (2e-4, 2e-4)  # one reference for both columns
    assert [format_value(v) for v in (0.0512345, float("nan"), None, 3)] == ["0.05123", "nan", "-", "3"]
    text = render_summary(metrics, "demo: baseline:linear")
    assert "demo: baseline:linear" in text and "baseline (momentum)" in text and "0.05123" in text
    assert len(text.splitlines()) == 5 + len(rows)  # title, top rule, header, header rule, rows, bottom rule
