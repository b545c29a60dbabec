"""Bar calendars: infer the bar frequency and trading sessions of timestamps, extend them forward.

This module owns the ``BarCalendar`` (bar size, trading weekdays, intraday bar slots, known
holidays, time zone), its inference from observed timestamps, the expected bar grid between two
dates (used to find gaps), the next ``n`` bar timestamps after a history (so live forecasts get
correct time features) and the annualisation factor ``periods_per_year``.

Intraday sessions are learned from the data: a "slot" is a time of day (the bar's label, as the
data labels it) that appears on a good share of trading days, so the A-share lunch break
11:30-13:00 and the overnight close are respected without any exchange table. Exchange holidays
cannot be inferred for the future here: ``future_timestamps`` skips weekends and the calendar's
``holidays`` only (``data.exchange.trading_calendar`` fills them in from an exchange calendar, or
from the holidays a panel itself shows). Sessions that cross midnight (futures night sessions) are treated as ordinary
slots of the calendar day on which they occur.

Knows nothing about panels' columns beyond a timestamp series, and nothing about models.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from kronos_quant.errors import DataError

__all__ = [
    "BarCalendar",
    "infer_frequency",
    "infer_panel_calendar",
    "future_timestamps",
    "periods_per_year",
    "infer_periods_per_year",
    "to_datetime_index",
]

CalendarKind = Literal["intraday", "daily", "weekly", "fixed"]
_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY = pd.Timedelta(days=1)


def to_datetime_index(timestamps: Any) -> pd.DatetimeIndex:
    """A ``pandas.DatetimeIndex`` from a polars/pandas Series, Index, numpy array or list of datetimes."""
    if hasattr(timestamps, "to_pandas") and not isinstance(timestamps, (pd.Series, pd.Index)):
        timestamps = timestamps.to_pandas()
    try:
        return pd.DatetimeIndex(pd.to_datetime(timestamps))
    except (TypeError, ValueError) as exc:
        raise DataError(f"cannot interpret the given values as timestamps: {exc}") from exc


def _parse_time(value: dt.time | str) -> dt.time:
    return value if isinstance(value, dt.time) else dt.time.fromisoformat(str(value))


def _offset(t: dt.time) -> pd.Timedelta:
    return pd.Timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _time_of(offset: pd.Timedelta) -> dt.time:
    total_us = int(offset / pd.Timedelta(microseconds=1))
    return (dt.datetime.min + dt.timedelta(microseconds=total_us)).time()


@dataclass(frozen=True)
class BarCalendar:
    """When bars happen.

    kind: ``"intraday"`` (several bars a day at ``slots``), ``"daily"`` (one bar per trading day at
    ``time_of_day``), ``"weekly"`` (every 7 days) or ``"fixed"`` (every ``bar``, no sessions).
    bar: nominal bar length. weekdays: trading weekdays (Monday = 0). slots: intraday bar labels
    within a day, ascending. holidays: extra non-trading dates. tz: time zone of the timestamps
    (None = naive); the calendar itself works on local wall-clock time.
    """

    kind: CalendarKind
    bar: pd.Timedelta
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    slots: tuple[dt.time, ...] = ()
    time_of_day: dt.time = dt.time(0, 0)
    holidays: tuple[dt.date, ...] = ()
    tz: str | None = None
    _slot_offsets: tuple[pd.Timedelta, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bar", pd.Timedelta(self.bar))
        if self.bar <= pd.Timedelta(0):
            raise ValueError(f"bar must be a positive duration, got {self.bar}")
        if not self.weekdays or any(w not in range(7) for w in self.weekdays):
            raise ValueError(f"weekdays must be a non-empty subset of 0..6 (Monday = 0), got {self.weekdays}")
        object.__setattr__(self, "weekdays", tuple(sorted(set(self.weekdays))))
        slots = tuple(sorted({_parse_time(s) for s in self.slots}))
        if self.kind == "intraday" and not slots:
            raise ValueError("an intraday calendar needs at least one slot (bar time of day)")
        object.__setattr__(self, "slots", slots)
        object.__setattr__(self, "_slot_offsets", tuple(_offset(s) for s in slots))
        object.__setattr__(self, "time_of_day", _parse_time(self.time_of_day))
        object.__setattr__(self, "holidays", tuple(sorted(set(self.holidays))))

    # ----------------------------------------------------------------- constructors
    @classmethod
    def daily(cls, *, weekdays: Iterable[int] = (0, 1, 2, 3, 4), time_of_day: dt.time | str = "00:00",
              holidays: Iterable[dt.date] = (), tz: str | None = None) -> BarCalendar:
        """One bar per trading day (business days by default)."""
        return cls("daily", pd.Timedelta(days=1), tuple(weekdays), (), _parse_time(time_of_day),
                   tuple(holidays), tz)

    @classmethod
    def intraday(cls, *, bar: str | pd.Timedelta, sessions: Iterable[tuple[dt.time | str, dt.time | str]],
                 weekdays: Iterable[int] = (0, 1, 2, 3, 4), holidays: Iterable[dt.date] = (),
                 tz: str | None = None) -> BarCalendar:
        """Bars every ``bar`` within each session; a session (first, last) names its first and last
        bar labels, inclusive. The A-share 5-minute calendar is
        ``BarCalendar.intraday(bar="5min", sessions=[("09:35", "11:30"), ("13:05", "15:00")])``."""
        step = pd.Timedelta(bar)
        slots: list[dt.time] = []
        for first, last in sessions:
            lo, hi = _offset(_parse_time(first)), _offset(_parse_time(last))
            if hi < lo:
                raise ValueError(f"session ({first}, {last}) ends before it starts; split it at midnight")
            slots += [_time_of(lo + k * step) for k in range(int((hi - lo) / step) + 1)]
        return cls("intraday", step, tuple(weekdays), tuple(slots), dt.time(0, 0), tuple(holidays), tz)

    # ----------------------------------------------------------------- properties
    @property
    def bars_per_day(self) -> int:
        """Bars in a full trading day (1 for daily and coarser calendars)."""
        return len(self.slots) if self.kind == "intraday" else 1

    @property
    def sessions(self) -> tuple[tuple[dt.time, dt.time], ...]:
        """Runs of consecutive slots (first and last bar label of each session)."""
        if self.kind != "intraday":
            return ()
        runs: list[tuple[dt.time, dt.time]] = []
        offs = self._slot_offsets
        start = 0
        for i in range(1, len(offs) + 1):
            if i == len(offs) or offs[i] - offs[i - 1] != self.bar:
                runs.append((self.slots[start], self.slots[i - 1]))
                start = i
        return tuple(runs)

    def describe(self) -> str:
        """One line, e.g. ``5min bars, sessions 09:35-11:30, 13:05-15:00 (48 bars/day), Mon-Fri``."""
        days = ",".join(_WEEKDAY_NAMES[w] for w in self.weekdays)
        if self.weekdays == (0, 1, 2, 3, 4):
            days = "Mon-Fri"
        elif self.weekdays == tuple(range(7)):
            days = "every day"
        tz = f", tz {self.tz}" if self.tz else ""
        if self.kind == "intraday":
            sess = ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in self.sessions)
            bar = _format_timedelta(self.bar)
            return f"{bar} bars, sessions {sess} ({self.bars_per_day} bars/day), {days}{tz}"
        if self.kind == "daily":
            return f"daily bars, {days}{tz}"
        if self.kind == "weekly":
            return f"weekly bars ({_WEEKDAY_NAMES[self.weekdays[0]]}){tz}"
        return f"fixed {_format_timedelta(self.bar)} bars{tz}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (for reports and provenance)."""
        return {
            "kind": self.kind, "bar": _format_timedelta(self.bar), "weekdays": list(self.weekdays),
            "sessions": [[f"{a:%H:%M:%S}", f"{b:%H:%M:%S}"] for a, b in self.sessions],
            "bars_per_day": self.bars_per_day, "time_of_day": f"{self.time_of_day:%H:%M:%S}",
            "holidays": [d.isoformat() for d in self.holidays], "tz": self.tz,
            "periods_per_year": periods_per_year(self), "description": self.describe(),
        }

    # ----------------------------------------------------------------- schedule
    def trading_days(self, start: Any, end: Any) -> pd.DatetimeIndex:
        """Naive midnight timestamps of the trading days (weekdays minus holidays) in [start, end]."""
        first, last = _naive(pd.Timestamp(start), self.tz), _naive(pd.Timestamp(end), self.tz)
        days = pd.date_range(first.normalize(), last.normalize(), freq="D")
        keep = np.isin(days.day_of_week, self.weekdays)
        if self.holidays:
            keep &= ~np.isin(days.date, np.array(self.holidays, dtype=object))
        return days[keep]

    def grid(self, start: Any, end: Any) -> pd.DatetimeIndex:
        """Every expected bar timestamp in [start, end] (inclusive), in the calendar's time zone."""
        lo, hi = _naive(pd.Timestamp(start), self.tz), _naive(pd.Timestamp(end), self.tz)
        if hi < lo:
            return self._localize(pd.DatetimeIndex([]))
        if self.kind in ("weekly", "fixed"):
            step = pd.Timedelta(days=7) if self.kind == "weekly" else self.bar
            out = pd.date_range(lo, hi, freq=step)
        elif self.kind == "daily":
            out = self.trading_days(lo, hi) + _offset(self.time_of_day)
        else:
            days = self.trading_days(lo, hi)
            offs = np.array(self._slot_offsets, dtype="timedelta64[us]")
            stamps = (days.values.astype("datetime64[us]")[:, None] + offs[None, :]).ravel()
            out = pd.DatetimeIndex(stamps)
        out = out[(out >= lo) & (out <= hi)]
        return self._localize(out)

    def next_timestamps(self, last: Any, n: int) -> pd.DatetimeIndex:
        """The ``n`` bar timestamps strictly after ``last`` (shape (n,))."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        last_local = _naive(pd.Timestamp(last), self.tz)
        if n == 0:
            return self._localize(pd.DatetimeIndex([], dtype="datetime64[us]"))
        if self.kind in ("weekly", "fixed"):
            step = pd.Timedelta(days=7) if self.kind == "weekly" else self.bar
            out = pd.DatetimeIndex([last_local + k * step for k in range(1, n + 1)])
            return self._localize(out)
        per_day = self.bars_per_day
        n_days = math.ceil(n / per_day) + 1
        # trading days are at least 1 in 7 weekdays; pad generously for holidays.
        span = (n_days * 7) // len(self.weekdays) + 7 + 2 * len(self.holidays)
        if self.kind == "daily":
            tod = last_local - last_local.normalize()
            days = self.trading_days(last_local + _DAY, last_local + span * _DAY)
            return self._localize((days + tod)[:n])
        candidates = self.grid(last_local.normalize(), last_local.normalize() + span * _DAY)
        candidates = candidates.tz_localize(None) if candidates.tz is not None else candidates
        return self._localize(candidates[candidates > last_local][:n])

    def _localize(self, idx: pd.DatetimeIndex) -> pd.DatetimeIndex:
        idx = pd.DatetimeIndex(idx).as_unit("us")
        if self.tz is None:
            return idx
        return idx.tz_localize(self.tz, ambiguous=np.zeros(len(idx), dtype=bool), nonexistent="shift_forward")


def _naive(ts: pd.Timestamp, tz: str | None) -> pd.Timestamp:
    """Local wall-clock time of ``ts`` in ``tz`` (naive timestamps are taken as already local)."""
    if ts.tzinfo is None:
        return ts
    return (ts.tz_convert(tz) if tz else ts).tz_localize(None)


def _format_timedelta(td: pd.Timedelta) -> str:
    seconds = int(td.total_seconds())
    for unit, size in (("D", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return str(td)


def _mode(values: np.ndarray) -> Any:
    uniq, counts = np.unique(values, return_counts=True)
    return uniq[np.argmax(counts)]


def _infer_weekdays(days: pd.DatetimeIndex) -> tuple[int, ...]:
    counts = np.bincount(days.day_of_week, minlength=7)
    chosen = {w for w in range(7) if counts[w] > 0 and counts[w] >= 0.2 * counts.max()}
    if (days.max() - days.min()) < pd.Timedelta(days=14):  # too short to see a week: assume Mon-Fri too
        chosen |= {0, 1, 2, 3, 4}
    return tuple(sorted(chosen))


def infer_frequency(timestamps: Any, *, min_slot_share: float = 0.25) -> BarCalendar:
    """Infer the bar calendar of a series of timestamps (duplicates and order do not matter).

    The bar size is the most common step between consecutive distinct timestamps. Steps under a
    day give an intraday calendar whose slots are the times of day present on at least
    ``min_slot_share`` of the trading days (so partial first/last days and missing bars do not
    distort it); steps of 1-4 days give a daily calendar, 5-8 days a weekly one; anything else a
    fixed step. Trading weekdays are those seen on at least 20% as many days as the busiest one.
    """
    idx = to_datetime_index(timestamps)
    idx = idx[~idx.isna()]
    tz = str(idx.tz) if idx.tz is not None else None
    local = (idx.tz_localize(None) if idx.tz is not None else idx).unique().sort_values().as_unit("us")
    if len(local) < 2:
        raise DataError(
            f"need at least 2 distinct timestamps to infer a bar calendar, got {len(local)}; "
            "pass calendar=BarCalendar.daily() or BarCalendar.intraday(...) explicitly"
        )
    diffs = np.diff(local.values)
    step = pd.Timedelta(_mode(diffs))
    days = local.normalize()
    trading_days = days.unique()
    weekdays = _infer_weekdays(trading_days)
    if step < _DAY:
        tod = (local - days).values
        uniq, counts = np.unique(tod, return_counts=True)
        threshold = min_slot_share * len(trading_days)
        offsets = [pd.Timedelta(u) for u, c in zip(uniq, counts) if c >= threshold]
        if not offsets:  # extremely irregular data: fall back to every observed time of day
            offsets = [pd.Timedelta(u) for u in uniq]
        slots = tuple(_time_of(o) for o in offsets)
        return BarCalendar("intraday", step, weekdays, slots, dt.time(0, 0), (), tz)
    time_of_day = _time_of(pd.Timedelta(_mode((local - days).values)))
    if step <= pd.Timedelta(days=4):
        return BarCalendar("daily", _DAY, weekdays, (), time_of_day, (), tz)
    if step <= pd.Timedelta(days=8):
        weekday = int(_mode(local.day_of_week.values))
        return BarCalendar("weekly", pd.Timedelta(days=7), (weekday,), (), time_of_day, (), tz)
    return BarCalendar("fixed", step, tuple(range(7)), (), time_of_day, (), tz)


def infer_panel_calendar(panel: Any, *, min_slot_share: float = 0.25) -> BarCalendar:
    """The calendar of a panel's ``timestamp`` column (the union over instruments)."""
    try:
        stamps = panel["timestamp"]
    except Exception as exc:  # noqa: BLE001 - any frame without the column
        raise DataError("panel has no 'timestamp' column; load it with kronos_quant.data.load_panel") from exc
    if hasattr(stamps, "unique") and hasattr(stamps, "to_pandas"):
        stamps = stamps.unique()
    return infer_frequency(stamps, min_slot_share=min_slot_share)


def future_timestamps(history_timestamps: Any, n: int, *, calendar: BarCalendar | None = None) -> pd.DatetimeIndex:
    """The next ``n`` bar timestamps after the last of ``history_timestamps`` (shape (n,)).

    Weekends, the calendar's holidays and intraday session breaks are skipped. The calendar is
    inferred from the history when not given; the result keeps the history's time zone.
    """
    idx = to_datetime_index(history_timestamps)
    idx = idx[~idx.isna()]
    if len(idx) == 0:
        raise DataError("future_timestamps needs at least one history timestamp")
    cal = calendar if calendar is not None else infer_frequency(idx)
    last = idx.max()
    if idx.tz is not None and cal.tz is None:
        cal = BarCalendar(cal.kind, cal.bar, cal.weekdays, cal.slots, cal.time_of_day, cal.holidays, str(idx.tz))
    return cal.next_timestamps(last, n)


def periods_per_year(calendar: BarCalendar) -> float:
    """Bars per year for annualisation (the package's one definition): 252 for Mon-Fri daily bars
    (365 for 7-day markets, pro rata otherwise), that x bars-per-day for intraday, 52 for weekly,
    12 for monthly steps (28-31 days), 365.25 days / bar for other fixed steps."""
    n_days = len(calendar.weekdays)
    days_per_year = 365.0 if n_days == 7 else 252.0 * n_days / 5.0
    if calendar.kind == "intraday":
        return days_per_year * calendar.bars_per_day
    if calendar.kind == "daily":
        return days_per_year
    if calendar.kind == "weekly":
        return 52.0
    if pd.Timedelta(days=28) <= calendar.bar <= pd.Timedelta(days=31):
        return 12.0
    return float(pd.Timedelta(days=365.25) / calendar.bar)


def infer_periods_per_year(timestamps: Any) -> float:
    """``periods_per_year`` of the calendar inferred from ``timestamps`` (at least 2 distinct ones)."""
    return periods_per_year(infer_frequency(timestamps))
