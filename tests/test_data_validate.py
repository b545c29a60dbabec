"""Validation checks and the raise / drop / fill policies, on a hand-made panel and the real S&P 500 file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from kronos_quant.data import (
    BarCalendar,
    PanelValidationError,
    SegmentBreak,
    load_panel_with_report,
    validate_panel,
)
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


# ----------------------------------------------------------------------------- issue 12: duplicates, junk, breaks
def _panel(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=list(PANEL_SCHEMA), orient="row").cast(PANEL_SCHEMA)


def _series(name: str, days: list[dt.datetime], close: list[float] | None = None) -> list[tuple]:
    close = close or [10.0 + 0.01 * k for k in range(len(days))]
    return [(name, t, c, c * 1.01, c * 0.99, c, 100.0, 100.0 * c) for t, c in zip(days, close)]


def test_conflicting_duplicates_raise_or_warn_and_are_never_kept(caplog: pytest.LogCaptureFixture) -> None:
    days = [d(k) for k in (1, 2, 3, 4, 5)]
    rows = _series("AAA", days) + _series("BBB", days)
    bogus = ("AAA", d(3), 10.0, 15.3, 9.9, 15.3, 100.0, 1530.0)  # a second, bogus Jan 3 bar 1.5x the close
    copy = rows[6]  # an exact copy of BBB's Jan 2 row
    panel = _panel(rows + [bogus, copy])
    with pytest.raises(PanelValidationError) as err:
        validate_panel(panel, policy="raise", source="prices.csv")
    assert "duplicate_timestamp: AAA: 2 | at 2024-01-03 | rows for one bar disagree" in str(err.value)
    assert "close 10.02 / 15.3" in str(err.value)
    for policy in ("drop", "fill"):
        caplog.clear()
        with caplog.at_level("WARNING", logger="kronos_quant.data"):
            clean, report = validate_panel(panel, policy=policy, source="prices.csv")  # type: ignore[arg-type]
        warned = [r.getMessage() for r in caplog.records if "conflicting duplicate" in r.getMessage()]
        assert len(warned) == 1 and "AAA 2024-01-03 (2 rows)" in warned[0] and "BBB" not in warned[0]
        assert d(3) not in rows_of(clean, "AAA") and clean["close"].max() < 11  # neither row is kept
        assert report.dropped == {"identical_duplicates": 1, "duplicate_timestamp": 2}
        assert report.n_rows_in == report.n_rows_out + 3
        assert report.by_check("identical_duplicates")[0].severity == "info"
        assert sorted(rows_of(clean, "BBB")) == days


def test_history_breaks_are_listed_and_exclusions_recorded() -> None:
    days = [dt.datetime(2024, 1, 1) + dt.timedelta(days=k) for k in range(60)]
    days = [t for t in days if t.weekday() < 5][:40]
    gap_days = days[:10] + days[25:]  # BBB lacks 15 bars the others have
    junk = [40.0] * 20 + [0.002] + [40.0] * 19  # CCC: a $0.002 print beside $40
    panel = _panel(_series("AAA", days) + _series("BBB", gap_days) + _series("CCC", days, junk))
    clean, report = validate_panel(panel, policy="drop")
    assert clean["instrument"].unique().sort().to_list() == ["AAA", "BBB", "CCC"]  # default: kept, reported
    assert report.breaks == [SegmentBreak("BBB", days[25], days[9], 15)]
    assert report.segment_starts() == {"BBB": [days[25]]}
    assert report.breaks_frame().rows() == [("BBB", days[25], days[9], 15)]
    assert "history breaks" in report.by_check("gaps")[0].detail and report.max_gap_bars == 10
    assert validate_panel(panel, policy="drop", max_gap_bars=15)[1].breaks == []  # 15 bars is not longer than 15
    clean, report = validate_panel(panel, policy="drop", exclude=["jumps", "gaps"])
    assert clean["instrument"].unique().to_list() == ["AAA"]
    assert [(e.instrument, e.check, e.n_rows) for e in report.exclusions] == [("BBB", "gaps", 25), ("CCC", "jumps", 40)]
    assert "first at 2024-01-29" in report.exclusions[1].detail and report.breaks == []
    assert report.dropped == {"excluded": 65} and report.n_rows_out == 40
    assert {i.action for i in report.by_check("suspicious_jump")} == {"excluded (instrument dropped)"}
    text = report.summary(max_lines=None)
    assert "exclusion: BBB: excluded (gaps" in text and "exclusion: CCC: excluded (jumps" in text
    assert json.loads(json.dumps(report.to_dict()))["exclusions"][0]["instrument"] == "BBB"
    with pytest.raises(ValueError, match="exclude must name checks"):
        validate_panel(panel, exclude=["spikes"])


def test_a_single_instruments_long_outage_is_a_break_but_a_holiday_week_is_not() -> None:
    weekdays = [t.to_pydatetime() for t in pd.bdate_range("2015-01-01", periods=800)]
    hole = weekdays[:200] + weekdays[580:]  # 380 weekdays without any bar: an outage, not a holiday
    _, report = validate_panel(_panel(_series("X", hole)))
    assert report.breaks == [SegmentBreak("X", weekdays[580], weekdays[199], 380)]
    holiday = weekdays[:200] + weekdays[206:]  # a 6-weekday closure (Chinese New Year is about this long)
    _, report = validate_panel(_panel(_series("X", holiday)))
    assert report.breaks == [] and not report.by_check("gaps")


def test_validation_config_accepts_the_plain_policy_and_the_mapping(tmp_path: Path) -> None:
    from kronos_quant.config import config_from_dict
    from kronos_quant.errors import ConfigError
    from kronos_quant.workflow import load_strategy_data

    assert config_from_dict({"data": {"validation": "drop"}}).data.validation.policy == "drop"
    assert config_from_dict({}).data.validation.options() == {"policy": "fill", "exclude": (), "max_gap_bars": 10,
                                                             "jump_threshold": 0.4}
    with pytest.raises(ConfigError, match="exclude"):
        config_from_dict({"data": {"validation": {"policy": "drop", "exclude": ["spikes"]}}})
    days = [t.to_pydatetime() for t in pd.bdate_range("2024-01-01", periods=30)]
    junk = [40.0] * 15 + [0.002] + [40.0] * 14
    _panel(_series("AAA", days) + _series("CCC", days, junk)).write_csv(tmp_path / "prices.csv")
    cfg = config_from_dict({"data": {"source": "file", "path": str(tmp_path / "prices.csv"),
                                     "validation": {"policy": "drop", "exclude": ["jumps"]}}})
    panel, report = load_strategy_data(cfg)
    assert panel["instrument"].unique().to_list() == ["AAA"]
    assert [(e.instrument, e.check) for e in report.exclusions] == [("CCC", "jumps")]


def test_summary_line_limit_and_the_cli_option(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kronos_quant.cli import app

    days = [t.to_pydatetime() for t in pd.bdate_range("2024-01-01", periods=5)]
    rows = []
    for k in range(70):  # one zero-volume bar each: 70 info lines
        series = _series(f"S{k:02d}", days)
        series[2] = series[2][:6] + (0.0, 0.0)
        rows += series
    _panel(rows).write_csv(tmp_path / "many.csv")
    _, report = load_panel_with_report(tmp_path / "many.csv")
    assert len(report.summary().splitlines()) == 60 and "summary(max_lines=None)" in report.summary()
    assert len(report.summary(max_lines=None).splitlines()) > 70
    short = CliRunner().invoke(app, ["data", "validate", str(tmp_path / "many.csv")])
    full = CliRunner().invoke(app, ["data", "validate", str(tmp_path / "many.csv"), "--max-lines", "0"])
    assert short.exit_code == 0 and full.exit_code == 0, full.output
    assert "more lines" in short.output and "more lines" not in full.output and "S69" in full.output
    assert "(--max-lines 0 shows them all)" in short.output and "summary(" not in short.output  # the CLI's option


def test_panel_and_validate_do_not_import_each_other() -> None:
    import ast

    pkg = Path(__file__).resolve().parents[1] / "kronos_quant" / "data"
    for name in ("validate.py", "report.py", "contract.py", "_history.py"):
        tree = ast.parse((pkg / name).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "kronos_quant.data.panel" not in imported, name
