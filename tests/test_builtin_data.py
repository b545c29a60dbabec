"""The bundled S&P 500 dataset: packaged bytes, data card, loading (from a source checkout and from an
installed wheel), and the CLI's builtin:NAME paths."""

from __future__ import annotations

import hashlib
import importlib.resources
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kronos_quant.data import (
    BUILTIN_DATASETS,
    builtin_card,
    builtin_file,
    load_builtin,
    load_builtin_with_report,
)
from kronos_quant.errors import DataError
from tests.conftest import REPO

NAME = "sp500-2013-2017"


def test_packaged_file_matches_the_catalogue_and_the_card() -> None:
    res = importlib.resources.files("kronos_quant").joinpath("builtin/datasets", BUILTIN_DATASETS[NAME].filename)
    digest = hashlib.sha256(res.read_bytes()).hexdigest()
    assert digest == BUILTIN_DATASETS[NAME].sha256
    card = builtin_card(NAME)
    assert "CC0" in card and digest in card and "held out" in card
    assert builtin_file(f"builtin:{NAME}").is_file()


def test_load_builtin_drops_the_documented_defects() -> None:
    panel, report = load_builtin_with_report(NAME)
    assert (panel.height, panel["instrument"].n_unique()) == (119_250, 100)
    assert sum(report.dropped.values()) == 5 and report.source == f"builtin:{NAME}"
    some = load_builtin(NAME, instruments=["AAPL", "BHF"], start="2017-07-01")
    assert sorted(some["instrument"].unique().to_list()) == ["AAPL", "BHF"]
    assert str(some["timestamp"].min())[:10] == "2017-07-03"
    with pytest.raises(DataError, match="unknown built-in dataset"):
        load_builtin("sp500-2020")


def test_the_card_says_what_the_data_shows_about_splits() -> None:
    # AAPL split 7-for-1 on 2014-06-09, CELG and CHD 2-for-1 (2014-06, 2016-09): split-adjusted data shows
    # no jump across them, in prices or volumes; unadjusted data would show a -86% / -50% "return".
    panel = load_builtin(NAME, instruments=["AAPL", "CELG", "CHD"]).to_pandas()
    wide = {f: panel.pivot(index="timestamp", columns="instrument", values=f) for f in ("close", "volume")}
    for inst, before, after in [("AAPL", "2014-06-06", "2014-06-09"), ("CELG", "2014-06-20", "2014-06-30"),
                                ("CHD", "2016-08-26", "2016-09-06")]:
        for field, tol in (("close", 0.1), ("volume", 0.9)):
            ratio = wide[field].loc[after, inst] / wide[field].loc[before, inst]
            assert abs(ratio - 1) < tol, (inst, field, ratio)
    assert wide["close"].loc["2013-02-08", "AAPL"] * 7 == pytest.approx(474.98, abs=0.01)  # 475 traded: / 7
    card = builtin_card(NAME)
    assert "**split-adjusted**" in card and "not adjusted for dividends" in card and "not adjusted**" not in card


def test_cli_reads_builtin_paths() -> None:
    from typer.testing import CliRunner

    from kronos_quant.cli import app

    out = CliRunner().invoke(app, ["data", "inspect", f"builtin:{NAME}", "--quiet"])
    assert out.exit_code == 0, out.output
    assert "119255 rows, 100 instruments" in out.output


@pytest.mark.slow
def test_an_installed_wheel_carries_the_dataset(tmp_path: Path) -> None:
    """Build the wheel, unpack it (what installing a pure-Python wheel amounts to) and load from there."""
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path / "dist")], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"cannot build a wheel here (no network for build dependencies?): {built.stderr[-300:]}")
    wheel = next((tmp_path / "dist").glob("kronos_quant-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "site")
    assert f"kronos_quant/builtin/datasets/{NAME}.parquet" in names
    assert f"kronos_quant/builtin/datasets/{NAME}.md" in names
    code = f"import kronos_quant.data as d; p = d.load_builtin('{NAME}'); print(d.__file__); print(p.height)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-2000:]
    where, rows = run.stdout.split()[-2:]
    assert where.startswith(str(tmp_path / "site")) and rows == "119250"
