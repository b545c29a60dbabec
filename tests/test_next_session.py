"""The nightly file's next session on the Chinese calendar: holidays skipped through run_signals, and past
the end of exchange_calendars' XSHG table (2026-12-31) an "inferred" basis in the file and the provenance,
a warning line from the CLI, and trading.holidays to supply the closures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kronos_quant.cli import app
from kronos_quant.config import load_config
from kronos_quant.data.exchange import exchange_calendar, session_basis
from kronos_quant.workflow import run_signals
from tests.conftest import REPO

STRATEGY = REPO / "strategies" / "momentum_baseline.yaml"


def _cn_daily(path: Path, start: str, end: str) -> Path:
    """Synthetic A-share daily bars on the XSHG sessions from ``start`` to ``end`` (4 codes)."""
    days = pd.DatetimeIndex(exchange_calendar("XSHG").sessions_in_range(start, end)).tz_localize(None)
    rng = np.random.default_rng(0)
    frames = []
    for code in ("600519", "000001", "300750", "601318"):
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
        frames.append(pd.DataFrame({"instrument": code, "timestamp": days, "open": close, "high": close * 1.01,
                                    "low": close * 0.99, "close": close, "volume": 1e6}))
    pd.concat(frames).to_csv(path, index=False)
    return path


def _overrides(csv: Path) -> list[str]:
    return ["market=cn_a_share", "data.source=file", f"data.path={csv}", "data.name=null", "data.start=null",
            "universe.instruments=null", "forecast.lookback=20", "forecast.cache_dir=null"]


@pytest.mark.parametrize("asof, expected", [("2024-09-30", "2024-10-08"), ("2024-02-08", "2024-02-19")])
def test_nightly_next_session_skips_chinese_holidays(tmp_path: Path, asof: str, expected: str) -> None:
    csv = _cn_daily(tmp_path / "cn.csv", "2023-06-01", "2024-10-31")
    cfg = load_config(STRATEGY, overrides=_overrides(csv))
    res = run_signals(cfg, pd.Timestamp(asof), output=tmp_path / "signals.csv", quiet=True)
    assert res.next_session == pd.Timestamp(expected) and res.next_session_basis == "XSHG"
    table = pd.read_csv(tmp_path / "signals.csv")
    assert (table["next_session"] == expected).all() and (table["next_session_basis"] == "XSHG").all()
    assert res.next_session_warning is None and res.provenance["next_session_basis"] == "XSHG"


def test_past_the_calendar_the_next_session_is_marked_inferred_and_the_cli_warns(tmp_path: Path) -> None:
    last = pd.Timestamp(exchange_calendar("XSHG").last_session)
    csv = _cn_daily(tmp_path / "cn.csv", str((last - pd.DateOffset(years=4)).date()), str(last.date()))
    strategy = tmp_path / "cn.yaml"
    strategy.write_text(STRATEGY.read_text())
    sets = [x for o in _overrides(csv) for x in ("--set", o)]
    out = tmp_path / "signals.csv"
    res = CliRunner().invoke(app, ["signals", str(strategy), "--asof", str(last.date()), "-o", str(out), "--quiet",
                                   *sets])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert (table["next_session_basis"] == "inferred").all() and pd.Timestamp(table["next_session"][0]) > last
    assert f"warning: next session {table['next_session'][0]} is inferred from the data" in res.output
    assert f"the XSHG calendar (exchange_calendars) ends {last.date()}" in res.output
    prov = json.loads(out.with_suffix(".csv.json").read_text())["provenance"]
    assert prov["next_session_basis"] == "inferred" and "trading.holidays" in prov["next_session_warning"]
    # The year's closures in trading.holidays: those days are skipped and the date counts as known.
    first = pd.Timestamp(table["next_session"][0])
    closed = [first, first + pd.offsets.BDay(1)]
    listed = "[" + ", ".join(str(d.date()) for d in closed) + "]"
    res = CliRunner().invoke(app, ["signals", str(strategy), "--asof", str(last.date()), "-o", str(out), "--quiet",
                                   "--force", *sets, "--set", f"trading.holidays={listed}"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert pd.Timestamp(table["next_session"][0]) == first + pd.offsets.BDay(2)
    assert (table["next_session_basis"] == "trading.holidays").all() and "warning:" not in res.output


def test_session_basis() -> None:
    last = pd.Timestamp(exchange_calendar("XSHG").last_session)
    after = last + pd.Timedelta(days=40)
    assert session_basis(last, exchange="XSHG") == "exchange"
    assert session_basis(after, exchange="XSHG") == "inferred"
    assert session_basis(after, exchange="XSHG", holidays=[after.replace(month=12, day=31).date()]) == "holidays"
    assert session_basis("2024-10-08", exchange=None) == "inferred"
