"""Bar calendars: inference (daily, intraday sessions), future timestamps, annualisation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from kronos_quant.data import (
    BarCalendar,
    future_timestamps,
    infer_frequency,
    infer_panel_calendar,
    load_panel,
    periods_per_year,
    synthetic_market,
    time_features,
)
from kronos_quant.errors import DataError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
A_SHARE = SHARED / "data" / "cn_a_share_5min.csv"
CN = BarCalendar.intraday(bar="5min", sessions=[("09:35", "11:30"), ("13:05", "15:00")])


def test_daily_business_days_and_weekend_crossing() -> None:
    days = pd.bdate_range("2024-01-01", periods=30)
    days = days.delete([3, 10])  # a couple of holidays do not change the calendar
    cal = infer_frequency(days)
    assert cal.kind == "daily" and cal.weekdays == (0, 1, 2, 3, 4) and cal.bars_per_day == 1
    assert periods_per_year(cal) == 252
    history = pd.DatetimeIndex(["2024-06-05", "2024-06-06", "2024-06-07"])  # ... Wed, Thu, Fri
    nxt = future_timestamps(history, 3)
    assert list(nxt) == list(pd.DatetimeIndex(["2024-06-10", "2024-06-11", "2024-06-12"]))
    assert time_features(nxt)[:, 2].tolist() == [0, 1, 2]  # Monday, Tuesday, Wednesday


def test_daily_keeps_time_of_day_time_zone_and_holidays() -> None:
    history = pd.date_range("2024-07-01 16:00", periods=3, freq="B", tz="America/New_York")
    nxt = future_timestamps(history, 2, calendar=BarCalendar.daily(holidays=[dt.date(2024, 7, 4)]))
    assert [str(t) for t in nxt] == ["2024-07-05 16:00:00-04:00", "2024-07-08 16:00:00-04:00"]
    assert str(nxt.tz) == "America/New_York"


def test_seven_day_markets_weekly_and_fixed() -> None:
    crypto = infer_frequency(pd.date_range("2024-01-01", periods=60, freq="D"))
    assert crypto.weekdays == tuple(range(7)) and periods_per_year(crypto) == 365
    assert future_timestamps(pd.date_range("2024-01-05", periods=3, freq="D"), 1)[0] == pd.Timestamp("2024-01-08")
    weekly = infer_frequency(pd.date_range("2024-01-05", periods=20, freq="W-FRI"))
    assert weekly.kind == "weekly" and periods_per_year(weekly) == 52
    hourly_247 = infer_frequency(pd.date_range("2024-01-01", periods=24 * 21, freq="h"))
    assert hourly_247.kind == "intraday" and hourly_247.bars_per_day == 24 and periods_per_year(hourly_247) == 365 * 24


def test_intraday_sessions_are_learned_from_data() -> None:
    stamps = CN.grid("2024-06-17", "2024-06-21 23:00")
    stamps = stamps[5:-7].delete([40, 41])  # partial first/last days and two missing bars
    cal = infer_frequency(stamps)
    assert cal.kind == "intraday" and cal.bar == pd.Timedelta("5min")
    assert cal.sessions == ((dt.time(9, 35), dt.time(11, 30)), (dt.time(13, 5), dt.time(15, 0)))
    assert cal.bars_per_day == 48 and periods_per_year(cal) == 252 * 48
    assert cal == CN
    assert "sessions 09:35-11:30, 13:05-15:00 (48 bars/day)" in cal.describe()


def test_future_timestamps_cross_lunch_break_overnight_and_weekend() -> None:
    lunch = future_timestamps(pd.DatetimeIndex(["2024-06-18 11:25", "2024-06-18 11:30"]), 2, calendar=CN)
    assert list(lunch.strftime("%H:%M")) == ["13:05", "13:10"]
    friday = pd.DatetimeIndex(["2024-06-21 14:55", "2024-06-21 15:00"])
    over = future_timestamps(friday, 3, calendar=CN)
    assert list(over.strftime("%a %H:%M")) == ["Mon 09:35", "Mon 09:40", "Mon 09:45"]
    long = future_timestamps(friday, 100, calendar=CN)
    assert len(long) == 100 and long.is_monotonic_increasing and long[48] == pd.Timestamp("2024-06-25 09:35")
    assert future_timestamps(friday, 0, calendar=CN).size == 0


def test_grid_and_errors() -> None:
    grid = CN.grid("2024-06-21 14:50", "2024-06-24 09:45")
    assert list(grid.strftime("%d %H:%M")) == ["21 14:50", "21 14:55", "21 15:00", "24 09:35", "24 09:40", "24 09:45"]
    with pytest.raises(DataError, match="at least 2 distinct timestamps"):
        infer_frequency(pd.DatetimeIndex(["2024-01-01"]))
    with pytest.raises(DataError, match="at least one history timestamp"):
        future_timestamps(pd.DatetimeIndex([]), 3)
    with pytest.raises(ValueError, match="ends before it starts"):
        BarCalendar.intraday(bar="1h", sessions=[("21:00", "02:00")])


def test_panel_calendar_of_a_synthetic_intraday_panel() -> None:
    panel = synthetic_market(3, 120, freq=CN, start="2024-06-18 09:35", seed=1)
    cal = infer_panel_calendar(panel)
    assert cal == CN
    last = panel["timestamp"].max()
    assert future_timestamps(panel["timestamp"], 1, calendar=cal)[0] > pd.Timestamp(last)
    assert cal.to_dict()["bars_per_day"] == 48


@pytest.mark.skipif(not A_SHARE.exists(), reason=f"{A_SHARE} not beside this checkout")
def test_real_a_share_five_minute_calendar() -> None:
    panel = load_panel(A_SHARE)
    cal = infer_panel_calendar(panel)
    assert cal.describe() == "5min bars, sessions 09:35-11:30, 13:05-15:00 (48 bars/day), Mon-Fri"
    stamps = panel["timestamp"]
    assert stamps.max() == dt.datetime(2024, 8, 29, 11, 30)  # a Thursday, last bar before lunch
    nxt = future_timestamps(stamps, 26)
    assert nxt[0] == pd.Timestamp("2024-08-29 13:05") and nxt[23] == pd.Timestamp("2024-08-29 15:00")
    assert nxt[24] == pd.Timestamp("2024-08-30 09:35")
    friday_close = stamps.filter(stamps <= dt.datetime(2024, 8, 23, 15, 0))
    assert future_timestamps(friday_close, 1)[0] == pd.Timestamp("2024-08-26 09:35")
    assert pl.Series(nxt).dt.hour().is_in([9, 10, 11, 13, 14, 15]).all()
