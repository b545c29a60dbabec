"""The workflow functions themselves (what the CLI and notebooks call), on a tiny synthetic market
with a model-free forecaster: outputs, provenance, reproducibility, idempotent files, early errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from kronos_quant._version import __version__
from kronos_quant.config import load_config
from kronos_quant.errors import ConfigError, DataError
from kronos_quant.workflow import (
    check_device,
    evaluate_forecasts,
    evaluate_run,
    load_strategy_data,
    run_backtest,
    run_forecast,
    run_signals,
)

H = 3


@pytest.fixture()
def cfg(tmp_path):
    return load_config(None, overrides=[
        "name=tiny",
        "data.synthetic={n_instruments: 6, n_bars: 200, mode: planted, strength: 0.3, seed: 2}",
        "model.id=baseline:historical_drift", f"forecast.horizon={H}", "forecast.lookback=40", "forecast.samples=8",
        "forecast.rebalance=5", f"forecast.cache_dir={tmp_path / 'cache'}", "backtest.start=2015-06-01",
        "portfolio.params={k: 2}", f"output.dir={tmp_path / 'runs'}/{{name}}", "output.figures=false",
        f"output.signals_file={tmp_path / 'signals'}/{{name}}_{{asof}}.csv",
    ])


def test_run_backtest_outputs_and_provenance(cfg, tmp_path):
    run = run_backtest(cfg, quiet=True)
    fc = run.forecasts
    asofs = fc["asof"].unique().sort()
    assert fc.height == fc["instrument"].n_unique() * asofs.len() * H  # instrument x as-of x step
    assert sorted(fc["step"].unique().to_list()) == list(range(1, H + 1))
    assert asofs.min() >= pd.Timestamp("2015-06-01")
    # scores are dated at the forecast as-of dates: a score never uses a later forecast
    assert set(run.scores.index) <= set(asofs.to_list())
    for key in ("ic", "rank_ic", "icir", "mse", "mse_random_walk", "sharpe", "max_drawdown", "turnover"):
        assert key in run.metrics
    # forecast quality against a pandas merge of the realised closes, computed here by hand
    quality = run.metrics["model"]["forecast"]
    actual = run.panel.to_pandas()[["instrument", "timestamp", "close"]]
    last = fc.filter(pl.col("step") == H).to_pandas().merge(
        actual, left_on=["instrument", "target_timestamp"], right_on=["instrument", "timestamp"], how="inner")
    err = last["close_mean"] / last["last_close"] - last["close"] / last["last_close"]
    assert quality["n_evaluated"] == len(last) > 0
    assert quality["accuracy"]["return_mse"] == pytest.approx(float(np.mean(err ** 2)), rel=1e-12)
    assert quality["accuracy"]["return_mse_rw"] == pytest.approx(float(np.mean((last["close"] / last["last_close"] - 1) ** 2)))
    assert 0.0 <= quality["quantile_band_coverage_90_last_step"] <= 1.0
    assert quality["quantile_band_width_90_last_step"] > quality["quantile_band_width_50_last_step"] > 0
    assert np.isfinite(quality["crps"])
    assert run.metrics["baseline"]["name"] == "momentum(20, skip 1)"
    prov = run.provenance
    assert prov["kronos_quant"] == __version__ and prov["seed"] == 0 and len(prov["data_fingerprint"]) == 64
    assert prov["model"]["forecaster"] == "historical_drift"
    assert prov["forecast_stats"]["forecasts"] == fc.select("instrument", "asof").unique().height
    out = tmp_path / "runs" / "tiny"
    assert run.output_dir == out
    saved = json.loads((out / "provenance.json").read_text())
    assert saved["config"]["forecast"]["horizon"] == H and saved["provenance"]["data_fingerprint"] == prov["data_fingerprint"]
    assert (out / "forecasts.parquet").is_file() and (out / "report.html").is_file()
    again = run_backtest(cfg, quiet=True, write=False)  # same config + seed -> same numbers (from the cache)
    assert again.provenance["forecast_stats"]["cache_misses"] == 0
    assert json.dumps(again.metrics, sort_keys=True, default=str) == json.dumps(run.metrics, sort_keys=True, default=str)


def test_evaluate_forecasts_and_evaluate_run_reproduce_the_run(cfg, tmp_path):
    run = run_backtest(cfg, quiet=True)
    panel, _ = load_strategy_data(cfg)
    direct = evaluate_forecasts(cfg, panel, run.forecasts, write=False)
    assert direct.metrics["ic"] == run.metrics["ic"] and direct.metrics["sharpe"] == run.metrics["sharpe"]
    again = evaluate_run(run.output_dir, output_dir=tmp_path / "again")
    saved = json.loads((run.output_dir / "metrics.json").read_text())
    assert json.loads((tmp_path / "again" / "metrics.json").read_text()) == saved
    changed = evaluate_run(run.output_dir, overrides=["portfolio.params={k: 4}"], output_dir=tmp_path / "k4")
    assert changed.config.portfolio.params == {"k": 4}
    assert (changed.weights.fillna(0) > 0).sum(axis=1).max() == 4 and again.metrics["ic"] == run.metrics["ic"]
    with pytest.raises(ConfigError, match="portfolio.params.kk"):
        evaluate_run(run.output_dir, overrides=["portfolio.params={kk: 4}"], output_dir=tmp_path / "bad")
    with pytest.raises(DataError, match="provenance.json not found"):
        evaluate_run(tmp_path / "nowhere")


def test_run_signals_is_idempotent_and_leaves_an_unchanged_file_untouched(cfg):
    first = run_signals(cfg, "2015-09-30", quiet=True)
    assert first.written and first.path.name == "tiny_2015-09-30.csv"
    assert len(first.table) == 6 and first.table["rank"].tolist() == list(range(1, 7))
    assert first.table["weight"].tolist() == pytest.approx([0.25, 0.25, 0, 0, 0, 0])  # k=2, max_weight 0.25
    assert first.next_session == pd.Timestamp("2015-10-01")
    before = first.path.stat()
    second = run_signals(cfg, "2015-09-30", quiet=True)
    assert not second.written and second.forecasts_computed == 0
    after = second.path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    pd.testing.assert_frame_equal(first.table, second.table)
    with pytest.raises(DataError, match="no bars on the as-of date 2015-10-03"):  # a Saturday
        run_signals(cfg, "2015-10-03", quiet=True)


def test_run_forecast_for_one_asof_and_for_the_backtest_period(cfg, tmp_path):
    res = run_forecast(cfg, pd.Timestamp("2015-09-30"), quiet=True)
    assert res.path == tmp_path / "runs" / "tiny" / "forecasts_2015-09-30.parquet"
    table = pl.read_parquet(res.path)
    assert table["asof"].unique().to_list() == [pd.Timestamp("2015-09-30")]
    assert table.height == 6 * H and "close_samples" in table.columns
    prov = json.loads(res.path.with_suffix(".parquet.json").read_text())
    assert prov["provenance"]["asof"] == "2015-09-30 00:00:00" and prov["config"]["name"] == "tiny"
    csv = run_forecast(cfg, None, output=tmp_path / "all.csv", quiet=True)
    frame = pl.read_csv(csv.path)
    assert "close_samples" not in frame.columns and frame.height == csv.table.height
    assert csv.table["asof"].n_unique() > 1
    with pytest.raises(DataError, match="no bars on the as-of date"):
        run_forecast(cfg, pd.Timestamp("2030-01-02"), quiet=True)


def test_devices_are_checked_before_any_work(cfg, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    kronos = cfg.model_copy(update={"model": cfg.model.model_copy(update={"id": "kronos-demo", "device": "cuda:1"})})
    with pytest.raises(ConfigError, match=r"'cuda:1' but this machine has 1 CUDA device\(s\) \(cuda:0..cuda:0\)"):
        run_backtest(kronos)
    check_device(kronos.model_copy(update={"model": kronos.model.model_copy(update={"device": "cuda:0"})}))
    baseline = cfg.model_copy(update={"model": cfg.model.model_copy(update={"device": "cuda:3"})})
    check_device(baseline)  # baselines use no device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA device; use --device auto"):
        run_forecast(kronos, None)


def test_workflow_metrics_are_finite_where_defined(cfg):
    run = run_backtest(cfg, quiet=True, write=False)
    net = run.metrics["model"]["backtest"]["net"]
    assert np.isfinite(net["sharpe_ratio"]) and np.isfinite(run.metrics["ic"])
    assert run.metrics["model"]["backtest"]["periods_per_year"] == 252.0


def test_few_dates_warn_that_the_t_tests_are_optimistic(cfg):
    """Audit of issue 15, F: with fewer than ~100 dates the Newey-West t-test over-rejects; the metrics, the
    terminal summary and the tear sheet say so under the verdicts."""
    run = run_backtest(cfg, quiet=True)
    known = run.forward_returns.notna().any(axis=1).sum()
    assert known < 100
    (line,) = run.metrics["warnings"]
    assert line.startswith(f"only {known} dates with a known outcome") and "optimistic" in line
    assert f"only {known} dates" in run.summary(width=300)
    assert f"only {known} dates" in (run.output_dir / "report.html").read_text()
