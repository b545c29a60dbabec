"""Validation checks and the raise / drop / fill policies, on a hand-made panel and the real S&P 500 file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from kronos_quant.data import BarCalendar, PanelValidationError, load_panel_with_report, validate_panel
from kronos_quant.data.panel import PANEL_SCHEMA
from kronos_quant.errors import DataError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ERROR_CHECKS = {"missing_key", "duplicate_timestamp", "missing_values", "non_positive_price", "negative_volume",
                "high_below_low", "close_outside_range", "open_outside_range"}


def d(day: int) -> dt.datetime:
    return dt.datetime(2024, 1, day)


# (instrument, timestamp, open, high, low, close, volume, amount), in "file order"
ROWS = [
    ("AAA", d(1), 10, 11, 9, 10, 100, 1000),
    ("AAA", d(2), 10, 11, 9, 10.5, 100, 1000),
    ("AAA", d(3), 10, 11, 9, None, 100, 1000),     # missing close
    ("AAA", d(4), 10, 9, 11, 10, 100, 1000),       # high < low (so close/open outside too)
    ("AAA", d(5), 10, 11, 9, 12, 100, 1000),       # close above high
    ("AAA", d(8), 8, 11, 9, 10, 100, 1000),        # open below low
    ("AAA", d(2), 10, 11, 9, 10.8, 100, 1000),     # conflicting duplicate of Jan 2 (the bar is dropped)
    ("BBB", d(3), 20, 21, 19, 20, 200, 4000),
    ("BBB", d(2), 20, 21, 19, 20, 200, 4000),      # decreasing file order
    ("BBB", d(1), 20, 21, 19, None, 200, 4000),    # decreasing; missing close with nothing to carry forward
    ("BBB", d(4), 20, 21, 19, 20, 200, 4000),
    ("BBB", d(8), 0, 0, 0, 0, 200, 4000),          # non-positive prices
    ("BBB", d(9), 20, 21, 19, 20, -5, 4000),       # negative volume
    ("BBB", d(10), 20, 21, 19, 20, 200, 4000),
    (None, d(5), 1, 1, 1, 1, 1, 1),                # no instrument
    ("CCC", d(9), 5, 5, 5, 5, 0, 0),               # short history, zero volume
    ("CCC", d(10), 10, 10, 10, 10, 10, 100),       # +69% jump
    ("AAA", d(9), 10, 11, 9, 10, 100, 1000),
    ("AAA", d(10), 10, 11, 9, 10, 100, 1000),
]


def raw_panel() -> pl.DataFrame:
    return pl.DataFrame(ROWS, schema=list(PANEL_SCHEMA), orient="row").cast(PANEL_SCHEMA)


def rows_of(panel: pl.DataFrame, name: str) -> dict[dt.datetime, tuple]:
    return {r[1]: r[2:] for r in panel.filter(pl.col("instrument") == name).rows()}


def assert_consistent(panel: pl.DataFrame) -> None:
    assert panel.null_count().sum_horizontal().item() == 0
    bad = panel.filter((pl.col("high") < pl.col("low")) | (pl.col("close") > pl.col("high"))
                       | (pl.col("close") < pl.col("low")) | (pl.col("open") > pl.col("high"))
                       | (pl.col("open") < pl.col("low")) | (pl.col("close") <= 0))
    assert bad.height == 0
    assert panel.equals(panel.sort(["instrument", "timestamp"]))
    assert panel.select(pl.struct("instrument", "timestamp").is_duplicated().any()).item() is False


def test_raise_lists_every_error() -> None:
    with pytest.raises(PanelValidationError) as err:
        validate_panel(raw_panel(), policy="raise", source="prices.csv")
    report = err.value.report
    assert isinstance(err.value, DataError)
    assert {i.check for i in report.errors} == ERROR_CHECKS
    assert all(i.action == "raised" for i in report.errors)
    msg = str(err.value)
    assert msg.startswith("prices.csv:") and "policy='drop'" in msg and "policy='fill'" in msg
    assert "close_outside_range: AAA" in msg and "2024-01-05" in msg


def test_drop_removes_offending_rows() -> None:
    panel, report = validate_panel(raw_panel(), policy="drop")
    assert_consistent(panel)
    assert sorted(rows_of(panel, "AAA")) == [d(1), d(9), d(10)]  # both conflicting Jan 2 rows are gone
    assert sorted(rows_of(panel, "BBB")) == [d(2), d(3), d(4), d(10)]
    assert report.n_rows_in == len(ROWS) and report.n_rows_out == panel.height
    assert report.dropped == {"missing_key": 1, "duplicate_timestamp": 2, "missing_values": 2,
                              "non_positive_price": 1, "negative_volume": 1, "high_below_low": 1,
                              "close_outside_range": 1, "open_outside_range": 1}
    assert report.n_rows_in == report.n_rows_out + sum(report.dropped.values())
    actions = {(i.check, i.instrument): i.action for i in report.issues}
    assert actions[("duplicate_timestamp", "AAA")] == "dropped (every row of the bar)"
    assert actions[("missing_values", "AAA")] == "dropped" and actions[("missing_values", "BBB")] == "dropped"
    assert actions[("non_positive_price", "BBB")] == "dropped"
    assert actions[("negative_volume", "BBB")] == "dropped"
    assert actions[("high_below_low", "AAA")] == "dropped"
    assert actions[("unsorted_timestamps", "BBB")] == "sorted"
    unsorted = {i.instrument: i.count for i in report.by_check("unsorted_timestamps")}
    assert unsorted == {"AAA": 1, "BBB": 2}  # AAA: the duplicate Jan 2 row comes after Jan 8
    gaps = {i.instrument: i for i in report.by_check("gaps")}
    assert d(9) in gaps["BBB"].timestamps and gaps["BBB"].severity == "warning"


def test_fill_repairs_what_it_can() -> None:
    panel, report = validate_panel(raw_panel(), policy="fill")
    assert_consistent(panel)
    aaa = rows_of(panel, "AAA")
    assert sorted(aaa) == [d(1), d(3), d(4), d(5), d(8), d(9), d(10)]  # the conflicting Jan 2 bar is dropped
    assert aaa[d(3)][:4] == (10, 11, 9, 10)            # close carried forward from Jan 1
    assert aaa[d(4)][:4] == (10, 11, 9, 10)            # high/low widened around open and close
    assert aaa[d(5)][1] == 12 and aaa[d(8)][2] == 8
    assert sorted(rows_of(panel, "BBB")) == [d(2), d(3), d(4), d(10)]  # leading null, zero and neg. volume
    checks = {(i.check, i.instrument): i for i in report.issues}
    assert checks[("missing_values", "AAA")].action == "filled"
    assert checks[("close_outside_range", "AAA")].action.startswith("repaired")
    assert any(i.check == "missing_values" and i.instrument == "BBB" and i.action == "dropped"
               for i in report.issues)
    assert {i.instrument for i in report.by_check("short_history")} == {"BBB", "CCC"}  # BBB lost its first bar
    assert report.by_check("zero_volume")[0].instrument == "CCC"
    assert report.by_check("suspicious_jump")[0].timestamps == (d(10),)
    assert ("gaps", "BBB") in checks and checks[("gaps", "BBB")].count == 3  # Jan 5, 8, 9


def test_fill_turns_a_bar_with_only_a_close_into_a_flat_bar() -> None:
    rows = [("X", d(1), 10, 11, 9, 10, 1, 10), ("X", d(2), None, None, None, 12, None, None)]
    panel, report = validate_panel(pl.DataFrame(rows, schema=list(PANEL_SCHEMA), orient="row").cast(PANEL_SCHEMA),
                                   policy="fill")
    assert panel.row(1)[2:] == (12, 12, 12, 12, 1, 12)  # volume carried forward, amount = volume x price
    assert "open (1)" in report.by_check("missing_values")[0].detail


def test_clean_panel_and_report_formats() -> None:
    clean, report = validate_panel(raw_panel(), policy="fill")
    again, report2 = validate_panel(clean.sample(fraction=1.0, shuffle=True, seed=0), policy="raise")
    assert again.equals(clean) and report2.ok and not report2.errors
    assert {i.severity for i in report2.issues} <= {"warning", "info"}
    assert "unsorted_timestamps" in {i.check for i in report2.issues}  # the shuffle is reported, and sorted
    text = report.summary()
    assert "errors (" in text and "missing_values: AAA" in text and "calendar: daily bars" in text
    json.dumps(report.to_dict())
    frame = report.to_frame()
    assert frame.columns == ["check", "severity", "instrument", "count", "action", "timestamps", "detail"]
    assert frame.height == len(report.issues)
    assert report.instruments_with("gaps") == ["AAA", "BBB"]  # AAA lost its conflicting Jan 2 bar
    with pytest.raises(ValueError, match="policy must be one of"):
        validate_panel(clean, policy="ignore")  # type: ignore[arg-type]


def test_intraday_gap_inside_a_session_is_found_for_a_single_instrument() -> None:
    cal = BarCalendar.intraday(bar="5min", sessions=[("09:35", "11:30"), ("13:05", "15:00")])
    stamps = cal.grid("2024-06-18", "2024-06-19 23:59")
    stamps = stamps.delete([30])  # one afternoon bar missing
    n = len(stamps)
    frame = pl.DataFrame({"instrument": ["X"] * n, "timestamp": stamps.values, "open": [1.0] * n,
                          "high": [1.0] * n, "low": [1.0] * n, "close": [1.0] * n, "volume": [1.0] * n,
                          "amount": [1.0] * n}).cast(PANEL_SCHEMA)
    _, report = validate_panel(frame)
    gaps = report.by_check("gaps")
    assert len(gaps) == 1 and gaps[0].count == 1 and gaps[0].timestamps == (dt.datetime(2024, 6, 18, 13, 35),)
    assert "lunch" not in gaps[0].detail and report.calendar.startswith("5min bars")


@pytest.mark.skipif(not (SHARED / "data" / "sp500_daily_2013_2017.parquet").exists(),
                    reason="../shared/data/sp500_daily_2013_2017.parquet not beside this checkout")
def test_sp500_real_defects_are_listed() -> None:
    path = SHARED / "data" / "sp500_daily_2013_2017.parquet"
    with pytest.raises(PanelValidationError) as err:
        load_panel_with_report(path)
    errors = err.value.report.errors
    missing = [i for i in errors if i.check == "missing_values"]
    assert [(i.instrument, i.timestamps) for i in missing] == [("BHF", (dt.datetime(2017, 7, 26),))]
    assert "open (1), high (1), low (1)" in missing[0].detail
    close_out = [i for i in errors if i.check == "close_outside_range"]
    assert sum(i.count for i in close_out) == 3 and {i.instrument for i in close_out} == {"AOS", "BBY", "CHK"}
    panel, report = load_panel_with_report(path, policy="fill")
    assert panel.height == 119_255
    assert_consistent(panel)
    short = {i.instrument: i.count for i in report.by_check("short_history")}
    assert {"APTV", "BHF", "BHGE", "CFG"} <= set(short)
    assert short["APTV"] < short["BHF"] < short["BHGE"] < short["CFG"] < 1233
    assert all(i.severity == "info" for i in report.by_check("short_history"))
    assert report.by_check("gaps") and all(i.severity == "warning" for i in report.by_check("gaps"))
    assert any("no amount column" in n for n in report.notes)
    dropped, _ = load_panel_with_report(path, policy="drop")
    assert dropped.height == 119_255 - 5  # BHF null row + AOS, BBY, CHK, CHD bad ranges


def test_time_zone_aware_intraday_panel_across_a_dst_change() -> None:
    from kronos_quant.data import synthetic_market

    cal = BarCalendar.intraday(bar="30min", sessions=[("10:00", "12:00"), ("13:30", "16:00")])
    panel = synthetic_market(3, 60, freq=cal, start="2024-03-08 10:00", seed=2)  # DST starts 2024-03-10
    panel = panel.with_columns(pl.col("timestamp").dt.replace_time_zone("America/New_York"))
    panel = panel.filter(~((pl.col("instrument") == "SYN001") & (pl.col("timestamp").dt.hour() == 14)))
    clean, report = validate_panel(panel)
    assert clean.schema["timestamp"].time_zone == "America/New_York"
    assert report.calendar.endswith("tz America/New_York")
    gaps = report.by_check("gaps")
    assert [(g.instrument, g.count) for g in gaps] == [("SYN001", 10)]
    assert all(t.hour == 14 for t in gaps[0].timestamps)
