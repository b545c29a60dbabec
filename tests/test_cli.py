"""The kronos-quant CLI end to end on tiny settings: backtest, signals (idempotent), exit codes."""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from kronos_quant.cli import EXIT_CONFIG, EXIT_DATA, EXIT_MODEL, app

TINY = ["--set", "data.synthetic={n_instruments: 8, n_bars: 260, mode: planted, strength: 0.3, seed: 1}",
        "--set", "forecast.lookback=60", "--set", "forecast.samples=4", "--set", "backtest.start=2015-06-01",
        "--set", "model.id=baseline:linear", "--set", "portfolio.params={k: 3}"]


@pytest.fixture()
def strategy(tmp_path):
    text = (
        "name: tiny\n"
        f"forecast:\n  cache_dir: {tmp_path / 'cache'}\n"
        f"output:\n  dir: {tmp_path / 'run'}\n  signals_file: {tmp_path / 'signals'}/{{name}}_{{asof}}.csv\n"
    )
    p = tmp_path / "tiny.yaml"
    p.write_text(text)
    return p


def _run(args):
    return CliRunner().invoke(app, args)


def test_backtest_writes_report_and_is_reproducible(strategy, tmp_path):
    res = _run(["backtest", str(strategy), "--quiet", *TINY])
    assert res.exit_code == 0, res.output
    assert "Rank IC" in res.output and "Sharpe" in res.output and "momentum(20, skip 1)" in res.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    flat = " ".join(res.output.split())  # the terminal wraps long lines
    assert metrics["verdicts"] and all(" ".join(line.split()) in flat for line in metrics["verdicts"])  # printed
    for key in ("ic", "rank_ic", "icir", "rank_icir", "mse", "sharpe", "max_drawdown", "annual_return", "turnover"):
        assert key in metrics
    for name in ("report.html", "forecasts.parquet", "signals.parquet", "positions.parquet", "trades.parquet",
                 "provenance.json"):
        assert (tmp_path / "run" / name).is_file(), name
    prov = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert prov["provenance"]["data_fingerprint"] and prov["provenance"]["model"]["forecaster"] == "linear"
    assert prov["config"]["forecast"]["lookback"] == 60
    res2 = _run(["backtest", str(strategy), "--quiet", "--output", str(tmp_path / "run2"), *TINY])
    assert res2.exit_code == 0, res2.output
    again = json.loads((tmp_path / "run2" / "metrics.json").read_text())
    assert again == metrics
    res3 = _run(["evaluate", str(tmp_path / "run"), "--quiet", "--output", str(tmp_path / "run3")])
    assert res3.exit_code == 0, res3.output
    assert json.loads((tmp_path / "run3" / "metrics.json").read_text()) == metrics


def test_signals_idempotent(strategy, tmp_path):
    args = ["signals", str(strategy), "--asof", "2015-09-30", "--quiet", *TINY]
    first = _run(args)
    assert first.exit_code == 0, first.output
    out = tmp_path / "signals" / "tiny_2015-09-30.csv"
    content = out.read_bytes()
    assert "written" in first.output and "8 instruments" in first.output
    second = _run(args)
    assert second.exit_code == 0, second.output
    assert "unchanged" in second.output and "0 forecasts computed" in second.output
    assert out.read_bytes() == content
    header = content.decode().splitlines()[0]
    assert header == "asof,next_session,instrument,rank,score,weight" or header.startswith("asof,next_session")
    assert (tmp_path / "signals" / "tiny_2015-09-30.csv.json").is_file()


def test_exit_codes(strategy, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("forecast:\n  horizn: 5\n")
    res = _run(["backtest", str(bad)])
    assert res.exit_code == EXIT_CONFIG and "did you mean 'horizon'" in res.output
    assert len(res.output.strip().splitlines()) == 1

    res = _run(["backtest", str(strategy), "--set", "data.source=file", "--set", f"data.path={tmp_path}/nope.csv"])
    assert res.exit_code == EXIT_DATA and "nope.csv" in res.output

    res = _run(["backtest", str(strategy), *TINY, "--set", "model.id=NoSuchOrg/NoSuchModel",
                "--set", "model.tokenizer=NoSuchOrg/NoSuchTok", "--set", "model.local_files_only=true"])
    assert res.exit_code == EXIT_MODEL and "NoSuchOrg/NoSuchModel" in res.output

    res = _run(["signals", str(strategy), "--asof", "2030-01-01", *TINY])
    assert res.exit_code == EXIT_DATA and "2030-01-01" in res.output

    res = _run(["signals", str(strategy), "--asof", "yesterday-ish", *TINY])
    assert res.exit_code == EXIT_CONFIG and "is not a date" in res.output

    res = _run(["backtest", str(strategy), *TINY, "--set", "signal.name=expected_retrun"])
    assert res.exit_code == EXIT_CONFIG and "did you mean 'expected_return'" in res.output


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "portfolio.params={kk: 3}"], "portfolio.params.kk: portfolio 'topk' has no parameter 'kk'; did you mean 'k'?"),
    (["--set", "portfolio.params={k: two}"], "portfolio.params.k: Input should be a valid integer"),
    (["--set", "portfolio.params={k: 0}"], "portfolio.params.k: Input should be greater than or equal to 1"),
    (["--set", "forecast.rebalance=0"], "forecast.rebalance: must be a number of bars >= 1"),
    (["--set", "signal.params={horizon: 3}"], "signal.params.horizon: signal 'expected_return' has no parameter"),
    (["--set", "baseline.name=momentm"], "baseline.name: unknown baseline 'momentm'; did you mean 'momentum'?"),
    (["--device", "cdua"], "model.device: unknown device 'cdua'; did you mean 'cuda'?"),
    (["--set", "name=../../x"], "cannot be used in file names"),
    (["--set", "baseline=[random_walk, linear]"], "baseline.1: baseline 'linear' is the model itself"),  # audit 15 C
])
def test_config_mistakes_exit_2_before_any_work(strategy, tmp_path, args, message):
    """Issue 12: each mistake is one line with the fix, exit 2, and nothing is forecast or written."""
    res = _run(["backtest", str(strategy), *TINY, *args])
    assert res.exit_code == EXIT_CONFIG, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()


def test_cuda_on_a_machine_without_one_exits_2_before_any_work(strategy, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = _run(["backtest", str(strategy), *TINY, "--set", "model.id=kronos-demo", "--device", "cuda"])
    assert res.exit_code == EXIT_CONFIG and "'cuda' but this machine has no CUDA device" in res.output, res.output
    assert "--device auto" in res.output and not (tmp_path / "cache").exists()


def test_help_on_every_command():
    for cmd in (["--help"], ["backtest", "--help"], ["signals", "--help"], ["forecast", "--help"],
                ["evaluate", "--help"], ["data", "validate", "--help"], ["data", "inspect", "--help"],
                ["models", "list", "--help"], ["finetune", "--help"]):
        res = _run(cmd)
        assert res.exit_code == 0 and "Usage" in res.output, cmd


def test_models_list_offline():
    res = _run(["models", "list"])
    assert res.exit_code == 0 and "kronos-small" in res.output


def test_data_validate_and_inspect(tmp_path):
    from tests.conftest import shared_path

    sp = shared_path("data", "sp500_daily_2013_2017.parquet")
    res = _run(["data", "validate", str(sp), "--policy", "raise"])
    assert res.exit_code == EXIT_DATA
    assert "BHF" in res.output and "2017-07-26" in res.output
    res = _run(["data", "validate", str(sp), "--policy", "drop"])
    assert res.exit_code == 0, res.output
    res = _run(["data", "inspect", str(sp)])
    assert res.exit_code == 0 and "100" in res.output
    res = _run(["data", "inspect", str(tmp_path / "missing.csv")])
    assert res.exit_code == EXIT_DATA and "missing.csv" in res.output


def test_forecast_without_output_writes_into_the_run_directory(strategy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = _run(["forecast", str(strategy), "--asof", "2015-09-30", "--quiet", *TINY])
    assert res.exit_code == 0, res.output
    out = tmp_path / "run" / "forecasts_2015-09-30.parquet"
    assert out.is_file() and (tmp_path / "run" / "forecasts_2015-09-30.parquet.json").is_file()
    assert not (tmp_path / "forecasts.parquet").exists()
    res = _run(["forecast", str(strategy), "-o", str(tmp_path / "fc.txt"), *TINY])
    assert res.exit_code == EXIT_CONFIG and ".parquet or .csv" in res.output


def test_forecast_command_writes_table_and_provenance(strategy, tmp_path):
    import polars as pl

    out = tmp_path / "fc.parquet"
    res = _run(["forecast", str(strategy), "-o", str(out), "--asof", "2015-09-30", "--quiet", *TINY])
    assert res.exit_code == 0, res.output
    table = pl.read_parquet(out)
    assert table["instrument"].n_unique() == 8 and set(table["step"].to_list()) == {1, 2, 3, 4, 5}
    prov = json.loads((tmp_path / "fc.parquet.json").read_text())
    assert prov["provenance"]["seed"] == 0 and prov["provenance"]["data_fingerprint"]


def test_evaluate_refuses_set_keys_it_cannot_apply(strategy, tmp_path):
    """Issue 12 item 4: model.* / forecast.* keys need new forecasts: exit 2, one line, nothing rewritten."""
    assert _run(["backtest", str(strategy), "--quiet", *TINY]).exit_code == 0
    before = (tmp_path / "run" / "metrics.json").read_bytes()
    for key in ("model.id=kronos-small", "forecast.horizon=10"):
        res = _run(["evaluate", str(tmp_path / "run"), "--quiet", "--set", key])
        assert res.exit_code == EXIT_CONFIG and len(res.output.strip().splitlines()) == 1, res.output
        assert f"evaluate --set {key}" in res.output and "kronos-quant backtest" in res.output
    assert (tmp_path / "run" / "metrics.json").read_bytes() == before


def test_signals_with_other_content_needs_force(strategy, tmp_path):
    """Issue 12 item 8: another seed for a published as-of is refused (exit 2) unless --force. (The signal reads
    the sample paths, so the seed changes it: the baselines' expected return is exact and seed-free.)"""
    args = ["signals", str(strategy), "--asof", "2015-09-30", "--quiet", *TINY, "--set", "signal.name=risk_adjusted_return"]
    assert _run(args).exit_code == 0
    out = tmp_path / "signals" / "tiny_2015-09-30.csv"
    content = out.read_bytes()
    res = _run([*args, "--seed", "1"])
    assert res.exit_code == EXIT_CONFIG and "--force" in res.output and len(res.output.strip().splitlines()) == 1
    assert out.read_bytes() == content
    res = _run([*args, "--seed", "1", "--force"])
    assert res.exit_code == 0 and "written" in res.output, res.output
    prov = json.loads(out.with_suffix(".csv.json").read_text())["provenance"]
    assert prov["replaced"][0]["sha256"] == hashlib.sha256(content).hexdigest()
