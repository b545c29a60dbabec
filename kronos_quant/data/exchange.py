"""Exchange calendars: holidays and sessions of real exchanges, next sessions, and market checks.

``exchange_calendars`` (the package) supplies each exchange's sessions, holidays, opening hours
and lunch breaks (XNYS: 09:30-16:00 New York; XSHG: 09:30-11:30 and 13:00-15:00 Shanghai). Why
it and not ``pandas_market_calendars``: see docs/markets.md. This module turns that into:

- ``trading_calendar``: a ``BarCalendar`` for a panel's timestamps whose bar structure (daily, or
  the intraday slots) comes from the data and whose holidays come from the exchange, or, with no
  known exchange (``exchange=None``), from the panel itself: weekdays on which no instrument has
  a bar, and fixed-date holidays (same month and day) that the data skipped in every year it
  covers, projected forward.
- ``next_sessions``: the next ``n`` bar timestamps after a history. An exchange's holidays are
  only known up to its calendar's last session (XSHG: 2026-12-31 in exchange_calendars 4.13);
  past it the panel-inferred holidays are used instead, with a logged warning -- never an error.
  Extra ``holidays`` (a strategy's ``trading.holidays``) are closures added to any calendar.
- ``session_basis``: how a session date is known: from the exchange calendar, from the extra
  holidays (a listed holiday in its year or later), or only inferred from the data.
- ``calendar_mismatch`` / ``session_mismatch``: how far the data's trading days and bar times
  disagree with an exchange (trading on its holidays, silent on its sessions, bars outside its
  hours or inside its lunch break), so a strategy can warn when its market does not fit its data.

Dates are the market's local calendar dates: naive timestamps are taken as local time, aware
ones are converted to the calendar's time zone first. Knows nothing about markets' costs,
strategies or models.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kronos_quant.data.calendar import BarCalendar, infer_frequency, to_datetime_index
from kronos_quant.errors import DataError

__all__ = ["CalendarMismatch", "exchange_calendar", "trading_calendar", "next_sessions", "session_basis",
           "inferred_holidays", "calendar_mismatch", "session_mismatch", "local_dates"]

logger = logging.getLogger(__name__)

_EARLIEST = pd.Timestamp("1990-01-02")  # sessions are loaded from here (or the calendar's own first day)


@functools.lru_cache(maxsize=8)
def exchange_calendar(code: str) -> Any:
    """The ``exchange_calendars`` calendar ``code`` (XNYS, XSHG, ...), from 1990 (or its first day) to the
    latest date its holidays are known (cached). DataError for an unknown code."""
    import exchange_calendars as xcals

    if code not in xcals.get_calendar_names(include_aliases=True):
        raise DataError(f"unknown exchange calendar {code!r}; use an exchange_calendars code such as XNYS or XSHG")
    try:
        return xcals.get_calendar(code, start=_EARLIEST)
    except ValueError:  # the calendar starts later than 1990: take its own first day
        return xcals.get_calendar(code)


def local_dates(timestamps: Any, tz: str | None = None) -> pd.DatetimeIndex:
    """Distinct sorted local calendar dates (naive midnights) of ``timestamps``; aware ones in ``tz`` first."""
    idx = to_datetime_index(timestamps)
    idx = idx[~idx.isna()]
    if idx.tz is not None:
        idx = (idx.tz_convert(tz) if tz else idx).tz_localize(None)
    return pd.DatetimeIndex(idx.normalize().unique()).sort_values()


def inferred_holidays(dates: pd.DatetimeIndex, *, weekdays: Sequence[int] = (0, 1, 2, 3, 4),
                      years_ahead: int = 2) -> tuple[dt.date, ...]:
    """Non-trading days inferred from the trading ``dates`` of a market (local, naive midnights).

    Inside the data's range: every weekday in ``weekdays`` without a date. After it (``years_ahead``
    years): each month-day that was a weekday and missing in every year the data covers in full
    (at least 2 such years), e.g. Dec 25 and Jan 1; movable feasts cannot be inferred.
    """
    if len(dates) == 0:
        return ()
    all_days = pd.date_range(dates.min(), dates.max(), freq="D")
    week = all_days[np.isin(all_days.day_of_week, list(weekdays))]
    inside = week[~week.isin(dates)]
    full_years = [y for y in range(dates.min().year, dates.max().year + 1)
                  if dates.min() <= pd.Timestamp(y, 1, 7) and pd.Timestamp(y, 12, 24) <= dates.max()]
    fixed: list[tuple[int, int]] = []
    if len(full_years) >= 2:
        seen = pd.Series(1, index=week[week.year.isin(full_years)])
        missed = pd.Series(1, index=inside[inside.year.isin(full_years)])
        md = lambda s: s.groupby([s.index.month, s.index.day]).size()  # noqa: E731
        counts, misses = md(seen), md(missed).reindex(md(seen).index, fill_value=0)
        fixed = [k for k, n in counts.items() if n >= 2 and misses[k] == n]
    future: list[dt.date] = []
    for year in range(dates.max().year, dates.max().year + years_ahead + 1):
        for month, day in fixed:
            try:
                d = pd.Timestamp(year, month, day)
            except ValueError:  # Feb 29
                continue
            if d > dates.max() and d.day_of_week in weekdays:
                future.append(d.date())
    return tuple(sorted({d.date() for d in inside} | set(future)))


def _exchange_holidays(code: str, first: pd.Timestamp, weekdays: Sequence[int]) -> tuple[tuple[dt.date, ...],
                                                                                          pd.Timestamp]:
    """(weekdays that are not sessions of ``code`` between ``first`` and its last session, last session)."""
    cal = exchange_calendar(code)
    lo = max(first, pd.Timestamp(cal.first_session))
    hi = pd.Timestamp(cal.last_session)
    days = pd.date_range(lo, hi, freq="D")
    days = days[np.isin(days.day_of_week, list(weekdays))]
    return tuple(d.date() for d in days[~days.isin(cal.sessions)]), hi


def trading_calendar(timestamps: Any, *, exchange: str | None = None, tz: str | None = None,
                     holidays: Sequence[dt.date] = ()) -> BarCalendar:
    """The ``BarCalendar`` of ``timestamps`` (bar size, weekdays, intraday slots inferred from them) with
    the holidays of ``exchange`` up to its last session and, after it (or with no exchange), the
    holidays inferred from the timestamps themselves (``inferred_holidays``), plus ``holidays``."""
    idx = to_datetime_index(timestamps)
    idx = idx[~idx.isna()]
    base = infer_frequency(idx)
    zone = base.tz or tz
    dates = local_dates(idx, zone)
    weekdays = base.weekdays
    inferred = inferred_holidays(dates, weekdays=weekdays)
    if exchange is None:
        found: tuple[dt.date, ...] = inferred
    else:
        known, last = _exchange_holidays(exchange, dates.min(), weekdays)
        weekdays = tuple(sorted(set(weekdays) | {0, 1, 2, 3, 4}))
        found = known + tuple(d for d in inferred if pd.Timestamp(d) > last)
    return BarCalendar(base.kind, base.bar, weekdays, base.slots, base.time_of_day,
                       tuple(found) + tuple(pd.Timestamp(d).date() for d in holidays), base.tz)


def next_sessions(timestamps: Any, n: int = 1, *, exchange: str | None = None, tz: str | None = None,
                  holidays: Sequence[dt.date] = ()) -> pd.DatetimeIndex:
    """The ``n`` bar timestamps after the last of ``timestamps`` on the exchange's calendar (shape (n,)).

    Holidays (the exchange's, and the extra ``holidays``), weekends and (intraday) session breaks
    are skipped; the time of day of daily bars is kept. Past the exchange calendar's last session
    the holidays are inferred from the data (with a warning, unless ``holidays`` cover that year:
    ``session_basis``). Keeps the timestamps' time zone.
    """
    idx = to_datetime_index(timestamps)
    idx = idx[~idx.isna()]
    if len(idx) == 0:
        raise DataError("next_sessions needs at least one history timestamp")
    cal = trading_calendar(idx, exchange=exchange, tz=tz, holidays=holidays)
    out = cal.next_timestamps(idx.max(), n)
    if exchange is not None and len(out):
        dates = local_dates(out, cal.tz or tz)
        guessed = [d for d in dates if session_basis(d, exchange=exchange, holidays=holidays) == "inferred"]
        if guessed:
            logger.warning("%s holidays are known only up to %s (exchange_calendars); the session(s) after it "
                           "(%s) skip weekends and holidays inferred from the data only: check them against the "
                           "exchange's published calendar, or list that year's closures in trading.holidays",
                           exchange, pd.Timestamp(exchange_calendar(exchange).last_session).date(),
                           ", ".join(str(d.date()) for d in guessed))
    return out


def session_basis(day: Any, *, exchange: str | None, holidays: Sequence[dt.date] = ()) -> str:
    """How the trading day ``day`` (a local date) is known: ``"exchange"`` when ``exchange``'s calendar covers
    it, ``"holidays"`` when the extra ``holidays`` list one in its year or a later one (a year's closures are
    published together), else ``"inferred"`` (from the data's own calendar only)."""
    d = pd.Timestamp(day).normalize()
    if exchange is not None and d <= pd.Timestamp(exchange_calendar(exchange).last_session):
        return "exchange"
    if any(pd.Timestamp(h).year >= d.year for h in holidays):
        return "holidays"
    return "inferred"


@dataclass(frozen=True)
class CalendarMismatch:
    """How the data's trading days disagree with an exchange over the days both cover.

    n_days: data days compared. closed_days: data days on which the exchange was closed.
    missing_sessions: exchange sessions on which the data has no bar at all.
    """

    exchange: str
    n_days: int
    closed_days: tuple[dt.date, ...]
    missing_sessions: tuple[dt.date, ...]

    @property
    def share(self) -> float:
        """(closed + missing) / compared days: 0 for data that follows the exchange."""
        return (len(self.closed_days) + len(self.missing_sessions)) / max(self.n_days, 1)

    def contradicts(self, *, tolerance: float = 0.01, min_days: int = 3) -> bool:
        """True when more than ``tolerance`` of the days (and at least ``min_days``) disagree."""
        bad = len(self.closed_days) + len(self.missing_sessions)
        return bad >= min_days and self.share > tolerance


def calendar_mismatch(timestamps: Any, exchange: str, *, tz: str | None = None) -> CalendarMismatch:
    """Compare the local trading dates of ``timestamps`` with the sessions of ``exchange``."""
    dates = local_dates(timestamps, tz)
    cal = exchange_calendar(exchange)
    lo = max(dates.min(), pd.Timestamp(cal.first_session)) if len(dates) else None
    hi = min(dates.max(), pd.Timestamp(cal.last_session)) if len(dates) else None
    if lo is None or hi is None or hi < lo:
        return CalendarMismatch(exchange, 0, (), ())
    mine = dates[(dates >= lo) & (dates <= hi)]
    sessions = pd.DatetimeIndex(cal.sessions_in_range(lo, hi)).tz_localize(None).normalize()
    closed = mine[~mine.isin(sessions)]
    missing = sessions[~sessions.isin(mine)]
    return CalendarMismatch(exchange, len(mine), tuple(d.date() for d in closed), tuple(d.date() for d in missing))


def session_mismatch(timestamps: Any, sessions: Sequence[tuple[str, str]], *, tz: str | None = None
                     ) -> tuple[float, float]:
    """How intraday bar labels (local time) disagree with the exchange's ``sessions`` ((open, close) pairs).

    Returns (outside, uncovered): the share of bars outside every [open, close] (a label at the open or
    the close counts as inside, whichever way bars are labelled, so labels inside a lunch break are
    outside), and the share of the sessions' minutes that the data's own sessions (runs of bar slots,
    widened by one bar) leave uncovered. (0.0, 0.0) for daily bars and when ``sessions`` is empty.
    """
    idx = to_datetime_index(timestamps)
    idx = idx[~idx.isna()]
    cal = infer_frequency(idx) if len(idx) > 1 else None
    if cal is None or not sessions or cal.kind != "intraday":
        return 0.0, 0.0
    if idx.tz is not None:
        idx = (idx.tz_convert(tz) if tz else idx).tz_localize(None)
    minutes = np.asarray(idx.hour * 60 + idx.minute, dtype=np.int64)
    spans = [(_minutes(a), _minutes(b)) for a, b in sessions]
    inside = np.zeros(len(minutes), bool)
    for lo, hi in spans:
        inside |= (minutes >= lo) & (minutes <= hi)
    bar = int(cal.bar / pd.Timedelta(minutes=1))
    covered = np.zeros(24 * 60 + 1, bool)
    for first, last in cal.sessions:
        covered[max(_minutes(f"{first:%H:%M}") - bar, 0):_minutes(f"{last:%H:%M}") + bar + 1] = True
    wanted = np.zeros(24 * 60 + 1, bool)
    for lo, hi in spans:
        wanted[lo:hi] = True
    uncovered = float((wanted & ~covered).sum() / max(wanted.sum(), 1))
    return float(1.0 - inside.mean()), uncovered


def _minutes(text: str) -> int:
    hours, minutes = (int(p) for p in text.split(":")[:2])
    return hours * 60 + minutes
