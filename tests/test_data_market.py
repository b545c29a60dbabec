"""`kronos-quant data inspect/validate --market`: bars a year and trading days as the market counts them
(243 x 48 for 5-minute A-shares, as the backtest annualises), exchange holidays not reported as days
without bars, sessions without bars called missing data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from kronos_quant.cli import EXIT_CONFIG, app
from kronos_quant.data import load_builtin
from kronos_quant.workflow import inspect_data, validate_data
from tests.conftest import shared_path


def _run(*args: str):
    return CliRunner().invoke(app, ["data", *args, "--quiet"])


def test_inspect_counts_bars_a_year_as_the_market_does() -> None:
    path = shared_path("data", "cn_a_share_5min.csv")
    plain = _run("inspect", str(path))
    assert plain.exit_code == 0 and "12096 bars/year" in plain.output  # 252 x 48: the data's weekdays only
    res = _run("inspect", str(path), "--market", "cn_a_share")
    assert res.exit_code == 0, res.output
    assert "11664 bars/year" in res.output  # 243 x 48, what the backtest uses
    assert "XSHG calendar: 53 trading days compared; 0 on XSHG holidays or weekends; 0 XSHG sessions without" \
        in res.output


def test_inspect_and_validate_against_the_us_market(tmp_path: Path) -> None:
    summary = inspect_data("builtin:sp500-2013-2017", market="us_equity")
    assert summary.periods_per_year == 252 and summary.exchange_check["compared_days"] == 1233
    assert summary.exchange_check["sessions_without_bars"] == [] and summary.exchange_check["days_on_holidays"] == []
    plain = validate_data("builtin:sp500-2013-2017")
    assert plain.by_check("non_trading_weekdays")  # NYSE holidays, unnamed: "holidays or missing data"
    assert not validate_data("builtin:sp500-2013-2017", market="us_equity").by_check("non_trading_weekdays")
    # A session missing from the data is missing data, not a holiday.
    panel = load_builtin("sp500-2013-2017", instruments=["AAPL", "AMZN"], start="2017-01-01").to_pandas()
    panel = panel[panel["timestamp"] != pd.Timestamp("2017-03-15")]
    panel.to_csv(tmp_path / "us.csv", index=False)
    (issue,) = validate_data(tmp_path / "us.csv", market="us_equity").by_check("non_trading_weekdays")
    assert issue.count == 1 and "missing data" in issue.detail and "holidays or" not in issue.detail
    res = _run("inspect", str(tmp_path / "us.csv"), "--market", "us_equity")
    assert "1 XNYS sessions without any bar (missing data) (2017-03-15)" in res.output


def test_an_unknown_market_is_a_config_error() -> None:
    res = _run("inspect", "builtin:sp500-2013-2017", "--market", "nyse")
    assert res.exit_code == EXIT_CONFIG and "unknown market 'nyse'; choose one of us_equity" in res.output
