"""Issue 12, loader side: files that used to load silently wrong now load right or fail naming the fix.

Unrecognised identifier columns that the repeated-timestamp rule cannot see (instruments in separate
date ranges, or sharing only a few dates), and file defects: ``inf`` volume/amount, columns whose
names differ only in case, epoch seconds mixed with milliseconds, ``;``-separated files with decimal
commas, and ragged lines. The hypothesis properties are in ``test_data_property.py``.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kronos_quant.data import load_panel, load_panel_with_report
from kronos_quant.errors import DataError


def _bars(days: pd.DatetimeIndex, level: float, seed: int) -> pd.DataFrame:
    """Daily bars around ``level`` with 1% moves (no jump inside the series)."""
    close = level * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, 0.01, len(days))))
    return pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "open": close, "high": close * 1.01,
                         "low": close * 0.99, "close": close, "volume": 100.0})


def _two_permnos(first: tuple[str, str], second: tuple[str, str], second_level: float) -> pd.DataFrame:
    a = _bars(pd.bdate_range(*first), 40.0, 1).assign(PERMNO=10001)
    b = _bars(pd.bdate_range(*second), second_level, 2).assign(PERMNO=10002)
    return pd.concat([a, b], ignore_index=True)


def _csv(tmp_path: Path, df: pd.DataFrame, name: str) -> Path:
    path = tmp_path / f"{name}.csv"
    df.to_csv(path, index=False)
    return path


# ----------------------------------------------------------------------------- unrecognised identifiers
def test_identifier_with_separate_date_ranges_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # before: PERMNO 10001 (2013-2014, ~$40) and 10002 (2015-2016, ~$120) loaded as ONE instrument 'crsp'
    # with a 3x price jump, exit 0: no timestamp repeats, so the long-file rule could not see it
    df = _two_permnos(("2013-01-01", "2014-12-31"), ("2015-01-01", "2016-12-31"), 120.0)
    df.sample(frac=1.0, random_state=0).to_csv(tmp_path / "crsp.csv", index=False)  # row order does not matter
    with pytest.raises(DataError) as err:
        load_panel(tmp_path / "crsp.csv", policy="drop")
    msg = str(err.value)
    assert "crsp.csv: column 'PERMNO' looks like an instrument identifier" in msg
    assert "10001 (2013-01-01 to 2014-12-31, 522 rows), 10002 (2015-01-01 to 2016-12-30, 522 rows)" in msg
    assert "the close jumps (by a factor over 1.5) at 1 of the 1 places where 'PERMNO' changes value" in msg
    assert "(e.g. 10001 -> 10002 at 2015-01-01)" in msg
    assert "columns found: ['date', 'open', 'high', 'low', 'close', 'volume', 'PERMNO']" in msg
    assert "columns={'PERMNO': 'instrument'} (strategy file: data.columns: {PERMNO: instrument})" in msg
    assert "instrument='crsp' (Python API) or delete column 'PERMNO'" in msg
    panel = load_panel(tmp_path / "crsp.csv", columns={"PERMNO": "instrument"})
    assert panel.group_by("instrument").len().sort("instrument").rows() == [("10001", 522), ("10002", 522)]
    assert load_panel(tmp_path / "crsp.csv", instrument="ONE")["instrument"].unique().to_list() == ["ONE"]
    # the same split without a price jump may be a harmless column (an exchange code that changed): a warning
    _two_permnos(("2013-01-01", "2014-12-31"), ("2015-01-01", "2016-12-31"), 40.5).to_csv(tmp_path / "flat.csv",
                                                                                          index=False)
    with caplog.at_level(logging.WARNING, logger="kronos_quant.data"):
        panel, report = load_panel_with_report(tmp_path / "flat.csv")
    assert panel["instrument"].unique().to_list() == ["flat"]
    warned = [r.getMessage() for r in caplog.records if "looks like an instrument identifier" in r.getMessage()]
    assert len(warned) == 1 and "data.columns: {PERMNO: instrument}" in warned[0]
    assert any("column 'PERMNO' looks like an instrument identifier" in n for n in report.notes)


def test_identifier_below_the_repeat_threshold_is_refused(tmp_path: Path) -> None:
    # before: 23 shared dates among 1067 rows (2%, under the 5% long-file rule) -> one instrument, the 23
    # clashing bars dropped as "duplicates" and two price levels spliced together, exit 0
    df = _two_permnos(("2013-01-01", "2014-12-31"), ("2014-12-01", "2016-12-31"), 41.0)
    df.to_csv(tmp_path / "overlap.csv", index=False)
    with pytest.raises(DataError) as err:
        load_panel(tmp_path / "overlap.csv", policy="fill")
    msg = str(err.value)
    assert "column 'PERMNO' looks like an instrument identifier" in msg
    assert "the 23 repeated timestamp(s) among 1067 distinct rows all belong to different 'PERMNO' values" in msg
    assert "data.columns: {PERMNO: instrument}" in msg and "columns found: [" in msg
    codes = df.assign(**{"Symbol Code": df["PERMNO"].map({10001: "OLD", 10002: "NEW"})}).drop(columns=["PERMNO"])
    with pytest.raises(DataError, match=r"column 'Symbol Code' looks like.*data.columns: \{Symbol Code: instrument\}"):
        load_panel(_csv(tmp_path, codes, "codes"))
    assert load_panel(tmp_path / "overlap.csv", columns={"PERMNO": "instrument"}).height == 1067


def test_identifier_of_instruments_trading_at_different_hours_is_refused(tmp_path: Path) -> None:
    # no timestamp repeats: A's bars are at 09:30 New York, B's at 09:30 Shanghai (both on one UTC clock),
    # so read as one instrument the series alternates between $40 and $120 at every bar
    days = pd.bdate_range("2024-01-02", periods=30)
    a = _bars(days, 40.0, 1).assign(date=[f"{d:%Y-%m-%d}T09:30:00-05:00" for d in days], SecCode="A")
    b = _bars(days, 120.0, 2).assign(date=[f"{d:%Y-%m-%d}T09:30:00+08:00" for d in days], SecCode="B")
    path = _csv(tmp_path, pd.concat([a, b]), "two_markets")
    with pytest.raises(DataError) as err:
        load_panel(path, tz="UTC")
    assert "column 'SecCode' looks like an instrument identifier" in str(err.value)
    assert "at 59 of the 59 places where 'SecCode' changes value" in str(err.value)
    assert "data.columns: {SecCode: instrument}" in str(err.value)
    assert load_panel(path, tz="UTC", columns={"SecCode": "instrument"}).height == 60


def test_harmless_extra_columns_are_not_taken_for_identifiers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    one = _bars(pd.bdate_range("2013-01-01", "2016-12-31"), 40.0, 3)
    n = len(one)
    date = pd.to_datetime(one["date"])
    extras = {"isST": (np.arange(n) < 300).astype(int),  # a 0/1 flag, set for the first 300 bars
              "status": np.where(np.arange(n) < 300, "Y", "N"),
              "year": date.dt.year, "month": date.dt.strftime("%Y-%m"), "yyyymmdd": date.dt.strftime("%Y%m%d"),
              "exchange": "XNYS", "trades": np.arange(n), "note": np.where(np.arange(n) % 2 == 0, "a", "b")}
    with caplog.at_level(logging.WARNING, logger="kronos_quant.data"):
        panel, report = load_panel_with_report(_csv(tmp_path, one.assign(**extras), "AAPL"))
    assert panel.height == n and panel["instrument"].unique().to_list() == ["AAPL"]
    assert not any("identifier" in r.getMessage() for r in caplog.records) and report.dropped == {}


def test_a_frame_without_instrument_column_names_the_likely_identifier() -> None:
    df = _two_permnos(("2013-01-01", "2013-03-29"), ("2013-01-01", "2013-03-29"), 120.0)
    with pytest.raises(DataError) as err:
        load_panel(df)
    assert "<DataFrame>: no instrument column" in str(err.value)
    assert "columns={'PERMNO': 'instrument'} (strategy file: data.columns: {PERMNO: instrument})" in str(err.value)


# ----------------------------------------------------------------------------- file defects
def test_inf_volume_and_amount_are_filled_and_counted(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("ticker,date,open,high,low,close,volume,amount\n"
                                    "A,2024-01-02,10,11,9,10,100,1000\n"
                                    "A,2024-01-03,10,11,9,10,100,inf\n"
                                    "A,2024-01-04,10,11,9,10,inf,1000\n"
                                    "A,2024-01-05,10,11,9,10,-inf,inf\n")
    panel, report = load_panel_with_report(tmp_path / "p.csv", policy="fill")
    assert panel.height == 4 and report.dropped == {}
    assert panel["volume"].to_list() == [100.0] * 4  # carried forward
    assert panel["amount"].to_list() == [1000.0] * 4  # volume x typical price (10)
    assert [i.action for i in report.issues if i.check == "missing_values"] == ["filled"]
    with pytest.raises(DataError, match="missing_values: A: 3"):
        load_panel(tmp_path / "p.csv")


def test_columns_whose_names_differ_only_in_case_are_refused(tmp_path: Path) -> None:
    # before: 'close' was used and 'Close' (another price) silently ignored
    (tmp_path / "p.csv").write_text("ticker,date,open,high,low,close,Close\nA,2024-01-02,10,11,9,10,10.5\n")
    with pytest.raises(DataError) as err:
        load_panel(tmp_path / "p.csv")
    assert "columns ['close', 'Close'] could each be the close column" in str(err.value)
    assert "columns={'close': 'close'} (strategy file: data.columns: {close: close})" in str(err.value)
    assert load_panel(tmp_path / "p.csv", columns={"Close": "close"})["close"].to_list() == [10.5]
    # the same name twice in the header (polars would rename the second 'close_duplicated_0' and ignore it)
    (tmp_path / "twice.csv").write_text("ticker,date,open,high,low,close,close\nA,2024-01-02,10,11,9,10,10.5\n")
    with pytest.raises(DataError, match=r"twice.csv: the header names column\(s\) \['close'\] more than once"):
        load_panel(tmp_path / "twice.csv")


def test_epoch_seconds_mixed_with_milliseconds_are_refused(tmp_path: Path) -> None:
    # before: the unit came from the largest value, so the seconds were read as milliseconds: 1970 dates
    s = 1_704_153_600  # 2024-01-02 00:00 UTC
    (tmp_path / "p.csv").write_text(f"ticker,ts,open,high,low,close\nA,{s},10,11,9,10\nA,{(s + 86400) * 1000},10,11,9,10\n"
                                    f"A,{s + 2 * 86400},10,11,9,10\n")
    with pytest.raises(DataError) as err:
        load_panel(tmp_path / "p.csv")
    assert ("p.csv: timestamp column 'ts' mixes epoch units: 2 in seconds (e.g. 1704153600), 1 in milliseconds "
            "(e.g. 1704240000000)") in str(err.value)
    ms = f"ticker,ts,open,high,low,close\nA,{s * 1000},10,11,9,10\nA,{(s + 86400) * 1000},10,11,9,10\n"
    (tmp_path / "ms.csv").write_text(ms)
    assert load_panel(tmp_path / "ms.csv")["timestamp"][0] == dt.datetime(2024, 1, 2, tzinfo=dt.UTC)


def test_semicolon_files_are_read_with_decimal_commas(tmp_path: Path) -> None:
    # before: "no timestamp column; found ['ticker;date;open;high;low;close']"
    (tmp_path / "eu.csv").write_text("ticker;date;open;high;low;close;volume\n"
                                     "A;2024-01-02;10,5;11;9,25;10;1.000\n"
                                     "A;2024-01-03;10;11,75;9;10,5;2.000,5\n")
    panel, report = load_panel_with_report(tmp_path / "eu.csv")
    assert panel["open"].to_list() == [10.5, 10.0] and panel["low"].to_list() == [9.25, 9.0]
    assert panel["volume"].to_list() == [1000.0, 2000.5]  # '.' groups thousands in a ';' file
    assert "fields separated by ';'" in report.notes
    assert any("decimal commas read as decimal points in ['open', 'high', 'low', 'close', 'volume']" in n
               for n in report.notes)
    (tmp_path / "tab.csv").write_text("ticker\tdate\topen\thigh\tlow\tclose\nA\t2024-01-02\t10\t11\t9\t10\n")
    assert load_panel(tmp_path / "tab.csv").height == 1
    # a decimal comma in a ','-separated file is not a thousands separator: "10,5" is not read as 105
    (tmp_path / "us.csv").write_text('ticker,date,open,high,low,close\nA,2024-01-02,"10,5",11,9,10\n'
                                     'A,2024-01-03,"1,000.5",1001,999,1000\n')
    panel, report = load_panel_with_report(tmp_path / "us.csv", policy="drop")
    assert panel["open"].to_list() == [1000.5] and report.dropped == {"missing_values": 1}
    assert any("non-numeric value(s) in 'open'" in n and "10,5" in n for n in report.notes)


def test_ragged_lines_are_named(tmp_path: Path) -> None:
    head = "ticker,date,open,high,low,close\n"
    (tmp_path / "long.csv").write_text(head + "A,2024-01-02,10,11,9,10\nA,2024-01-03,10,11,9,10,99\n")
    with pytest.raises(DataError) as err:  # before: polars' "Consider setting 'truncate_ragged_lines=True'"
        load_panel(tmp_path / "long.csv")
    assert "long.csv: line 3 has 7 fields but the header has 6" in str(err.value)
    assert "truncate_ragged_lines" not in str(err.value)
    # before: a short line was read with trailing nulls (a missing close, or values shifted into other columns)
    (tmp_path / "short.csv").write_text(head + "A,2024-01-02,10,11,9,10\nA,2024-01-03,10,11,9\nA,2024-01-04,1,1,1,1\n")
    with pytest.raises(DataError, match="short.csv: line 3 has 5 fields but the header has 6"):
        load_panel(tmp_path / "short.csv", policy="drop")
    quoted = head + 'A,2024-01-02,"1,000",1001,999,1000\nA,2024-01-03,10,11,9,\n'  # a quoted comma; an empty close
    (tmp_path / "quoted.csv").write_text(quoted)
    panel, report = load_panel_with_report(tmp_path / "quoted.csv", policy="drop")
    assert panel["open"].to_list() == [1000.0] and report.dropped == {"missing_values": 1}
