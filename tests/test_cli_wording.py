"""Issue 12 audit, the CLI's words: help examples the command accepts, hints that name CLI options,
clear errors for an as-of with no history and an unknown device, the data commands' reading options,
a report directory checked before any forecasting and the unscored count on the signals line."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from kronos_quant.cli import EXIT_CONFIG, EXIT_DATA, app
from tests.conftest import make_panel

TINY = ["--set", "data.synthetic={n_instruments: 8, n_bars: 260, mode: planted, strength: 0.3, seed: 1}",
        "--set", "forecast.lookback=60", "--set", "forecast.samples=4", "--set", "backtest.start=2015-06-01",
        "--set", "model.id=baseline:linear", "--set", "portfolio.params={k: 3}"]


def _run(args: list[str]):
    return CliRunner().invoke(app, args, env={"COLUMNS": "200"})


def _flat(text: str) -> str:
    """Help text without the box drawing and line wrapping of the terminal."""
    return " ".join(text.replace("│", " ").split())


@pytest.fixture()
def strategy(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(f"name: tiny\nforecast:\n  cache_dir: {tmp_path / 'cache'}\noutput:\n  dir: {tmp_path / 'run'}\n"
                 f"  signals_file: {tmp_path / 'signals'}/{{name}}_{{asof}}.csv\n")
    return p


def test_set_examples_in_help_are_keys_the_command_accepts(strategy, tmp_path):
    evaluate = _flat(_run(["evaluate", "--help"]).output)
    assert "forecast.horizon" not in evaluate and "e.g. --set portfolio.params={k: 5}" in evaluate
    assert "e.g. --set forecast.horizon=10" in _flat(_run(["backtest", "--help"]).output)
    assert "e.g. --set windows.horizon=10" in _flat(_run(["finetune", "--help"]).output)
    assert _run(["backtest", str(strategy), "--quiet", *TINY]).exit_code == 0
    res = _run(["evaluate", str(tmp_path / "run"), "--quiet", "--set", "portfolio.params={k: 5}"])  # the example
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("command", ["signals", "forecast"])
def test_an_asof_on_the_first_date_names_the_first_usable_asof(strategy, command):
    """The first date of the data has no history: not a bar-calendar error but the first usable as-of."""
    res = _run([command, str(strategy), "--asof", "2015-01-02", *TINY])
    assert res.exit_code == EXIT_DATA, res.output
    assert "no history precedes the as-of date 2015-01-02, the first date in the data; the first usable --asof " \
           "is 2015-03-26 (the first date with 60 bars)" in res.output
    assert "calendar" not in res.output and len(res.output.strip().splitlines()) == 1
    res = _run([command, str(strategy), "--asof", "2015-01-05", *TINY])
    assert res.exit_code == EXIT_DATA and "no instrument has 60 bars of history up to 2015-01-05 (at most 2); the " \
           "first usable --asof is 2015-03-26" in res.output, res.output
    assert _run([command, str(strategy), "--asof", "2015-03-26", "--quiet", *TINY]).exit_code == 0


def test_device_names_are_case_insensitive_and_the_error_reads_as_a_sentence(strategy):
    from kronos_quant.config import load_config

    assert load_config(None, overrides=["model.device=CPU"]).model.device == "cpu"
    assert load_config(None, overrides=["model.device=CUDA:1"]).model.device == "cuda:1"
    res = _run(["backtest", str(strategy), *TINY, "--device", "xyz"])
    assert res.exit_code == EXIT_CONFIG
    assert "model.device: unknown device 'xyz'; use auto, cpu, cuda, cuda:N or mps" in res.output, res.output


def _permno_csv(path, encoding: str = "utf-8"):
    """Three instruments under an identifier column the loader does not know, one name with an accent."""
    days = pd.bdate_range("2024-01-01", periods=30)
    rows = [{"PERMNO": name, "date": f"{d:%Y-%m-%d}", "open": 100.0 + i, "high": 101.0 + i, "low": 99.0 + i,
             "close": 100.5 + i, "volume": 1000.0}
            for name in ("10001", "10002", "Café") for i, d in enumerate(days)]
    path.write_bytes(pl.DataFrame(rows).write_csv().encode(encoding))
    return path


@pytest.mark.parametrize("command", ["validate", "inspect"])
def test_data_commands_take_columns_tz_and_encoding(tmp_path, command):
    csv = _permno_csv(tmp_path / "permno.csv", encoding="cp1252")
    res = _run(["data", command, str(csv)])
    assert res.exit_code == EXIT_DATA and "encoding" in res.output
    res = _run(["data", command, str(csv), "--encoding", "cp1252"])
    assert res.exit_code == EXIT_DATA and "columns={'PERMNO': 'instrument'}" in res.output, res.output
    res = _run(["data", command, str(csv), "--encoding", "cp1252", "--columns", "PERMNO=instrument"])
    assert res.exit_code == 0 and "3 instruments" in res.output, res.output
    res = _run(["data", command, str(csv), "--encoding", "cp1252", "--columns", "PERMNO=instrument,date=timestamp",
                "--tz", "America/New_York"])
    assert res.exit_code == 0 and "3 instruments" in res.output, res.output
    res = _run(["data", command, str(csv), "--columns", "PERMNO"])
    assert res.exit_code == EXIT_CONFIG and "expected SOURCE=PANEL" in res.output
    res = _run(["data", command, str(csv), "--encoding", "cp1252", "--columns", "PERMNO=instrument",
                "--tz", "Mars/Olympus"])
    assert res.exit_code in (EXIT_CONFIG, EXIT_DATA) and "Mars/Olympus" in res.output, res.output


def test_the_time_zone_option_converts_aware_timestamps(tmp_path):
    csv = tmp_path / "utc.csv"
    panel = make_panel(2, n_days=10, tz="UTC", hour=21)  # 16:00 in New York
    panel.write_csv(csv)
    res = _run(["data", "inspect", str(csv), "--tz", "America/New_York"])
    assert res.exit_code == 0 and "16:00:00" in res.output and "21:00:00" not in res.output, res.output


def test_an_output_directory_holding_other_runs_is_refused_before_forecasting(strategy, tmp_path):
    runs = tmp_path / "runs"
    (runs / "other-run").mkdir(parents=True)
    res = _run(["backtest", str(strategy), *TINY, "-o", str(runs)])
    assert res.exit_code == EXIT_CONFIG and "holds directories that are not part of a run (other-run)" in res.output
    assert not (tmp_path / "cache").exists(), "forecasts were made before the directory was checked"


def test_the_signals_line_counts_unscored_instruments(tmp_path):
    csv = tmp_path / "prices.csv"
    make_panel({"A": (0, 120), "B": (0, 120), "C": (0, 120), "SHORT": (100, 120)}, n_days=120, seed=3,
               hour=0).write_csv(csv)
    strategy = tmp_path / "file.yaml"
    strategy.write_text(f"name: file\ndata:\n  source: file\n  path: {csv}\nmodel:\n  id: baseline:random_walk\n"
                        f"forecast:\n  lookback: 40\n  horizon: 3\n  samples: 4\n  cache_dir: {tmp_path / 'cache'}\n"
                        f"portfolio:\n  params: {{k: 2}}\noutput:\n  dir: {tmp_path / 'run'}\n"
                        f"  signals_file: {tmp_path}/{{name}}_{{asof}}.csv\n")
    res = _run(["signals", str(strategy), "--asof", str(pd.bdate_range("2024-01-01", periods=120)[-1].date()),
                "--quiet"])
    assert res.exit_code == 0, res.output
    assert "; 3 instruments, 1 not scored: too little history;" in res.output, res.output

    from kronos_quant.run_checks import unscored_line

    assert unscored_line([]) == ""
    assert unscored_line([{"instrument": "X", "reason": "too little history: at most 3 clean bars"},
                          {"instrument": "Y", "reason": "excluded by validation (jumps: 2 jumps)"},
                          {"instrument": "Z", "reason": "too little history: at most 5 clean bars"}]) \
        == "3 not scored: too little history (2), excluded by validation (1)"
