"""Exchange calendars: next sessions skip US and Chinese holidays (exchange_calendars), the fallback past
a calendar's last known session, holidays inferred from the data, and calendar/session mismatches."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from kronos_quant.data.exchange import (
    calendar_mismatch,
    exchange_calendar,
    inferred_holidays,
    next_sessions,
    session_mismatch,
    trading_calendar,
)
from kronos_quant.errors import DataError


def _xnys_days(start: str, end: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(exchange_calendar("XNYS").sessions_in_range(start, end)).tz_localize(None)


@pytest.mark.parametrize("asof, expected", [("2017-07-03", "2017-07-05"), ("2017-12-22", "2017-12-26"),
                                            ("2017-12-29", "2018-01-02"), ("2017-11-22", "2017-11-24")])
def test_next_session_skips_us_holidays(asof: str, expected: str) -> None:
    history = _xnys_days("2017-01-03", asof)
    assert next_sessions(history, 1, exchange="XNYS")[0] == pd.Timestamp(expected)


@pytest.mark.parametrize("asof, expected", [("2024-09-30", "2024-10-08"), ("2024-02-08", "2024-02-19"),
                                            ("2024-05-30", "2024-05-31")])
def test_next_session_skips_chinese_holidays(asof: str, expected: str) -> None:
    history = pd.DatetimeIndex(exchange_calendar("XSHG").sessions_in_range("2024-01-02", asof)).tz_localize(None)
    assert next_sessions(history, 1, exchange="XSHG")[0] == pd.Timestamp(expected)


def test_next_sessions_keep_time_of_day_and_time_zone() -> None:
    history = _xnys_days("2017-06-01", "2017-07-03").tz_localize("America/New_York") + pd.Timedelta(hours=16)
    out = next_sessions(history, 2, exchange="XNYS")
    assert [str(t) for t in out] == ["2017-07-05 16:00:00-04:00", "2017-07-06 16:00:00-04:00"]


def test_intraday_next_sessions_respect_the_lunch_break() -> None:
    days = pd.DatetimeIndex(exchange_calendar("XSHG").sessions_in_range("2024-09-23", "2024-09-30")).tz_localize(None)
    stamps = pd.DatetimeIndex([d + pd.Timedelta(t + ":00") for d in days for t in
                               ["09:35", "09:40", "11:25", "11:30", "13:05", "13:10", "14:55", "15:00"]])
    out = next_sessions(stamps[stamps <= pd.Timestamp("2024-09-27 11:30")], 2, exchange="XSHG")
    assert list(out) == [pd.Timestamp("2024-09-27 13:05"), pd.Timestamp("2024-09-27 13:10")]
    out = next_sessions(stamps, 1, exchange="XSHG")  # after 2024-09-30 15:00: the National Day week
    assert out[0] == pd.Timestamp("2024-10-08 09:35")


def test_past_the_last_known_session_falls_back_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    cal = exchange_calendar("XSHG")
    last = pd.Timestamp(cal.last_session)
    history = pd.DatetimeIndex(cal.sessions_in_range(last - pd.Timedelta(days=40), last)).tz_localize(None)
    with caplog.at_level(logging.WARNING, logger="kronos_quant.data.exchange"):
        out = next_sessions(history, 3, exchange="XSHG")
    assert (out > last).all() and all(d.day_of_week < 5 for d in out)
    assert "known only up to" in caplog.text


def test_holidays_inferred_from_the_data_itself() -> None:
    days = _xnys_days("2013-01-02", "2017-12-29")
    holidays = set(inferred_holidays(days))
    assert {pd.Timestamp(d).date() for d in ["2017-07-04", "2016-12-26", "2017-11-23"]} <= holidays
    # Fixed-date holidays seen in every year are projected forward: Christmas and New Year 2018.
    assert {pd.Timestamp("2018-12-25").date(), pd.Timestamp("2018-01-01").date()} <= holidays
    for asof, expected in [("2017-07-03", "2017-07-05"), ("2017-12-22", "2017-12-26"), ("2017-12-29", "2018-01-02")]:
        assert next_sessions(days[days <= asof], 1)[0] == pd.Timestamp(expected)
    cal = trading_calendar(days)
    assert cal.kind == "daily" and pd.Timestamp("2017-07-04").date() in cal.holidays


def test_calendar_and_session_mismatch() -> None:
    us = _xnys_days("2016-01-04", "2017-12-29")
    assert calendar_mismatch(us, "XNYS").share == 0.0
    cn = calendar_mismatch(us, "XSHG")
    assert cn.contradicts() and pd.Timestamp("2017-10-02").date() in cn.closed_days  # National Day: US trades
    assert pd.Timestamp("2017-07-04").date() in cn.missing_sessions
    bars = pd.DatetimeIndex([d + pd.Timedelta(minutes=m) for d in us[:20] for m in range(9 * 60 + 35, 16 * 60 + 1, 5)])
    outside, _ = session_mismatch(bars, (("09:30", "11:30"), ("13:00", "15:00")))
    assert outside > 0.3  # lunch-break and afternoon bars under the A-share hours
    assert session_mismatch(bars, (("09:30", "16:00"),)) == (0.0, 0.0)
    assert session_mismatch(us, (("09:30", "16:00"),)) == (0.0, 0.0)  # daily bars: no session check
    with pytest.raises(DataError, match="unknown exchange calendar"):
        exchange_calendar("NOPE")
