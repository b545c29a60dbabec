"""Date bounds: the one reading of ``start`` / ``end`` / as-of dates given by users and configs.

A bound is a ``datetime.date``, a ``datetime.datetime``, a ``pandas.Timestamp`` or a string. It
is read as wall-clock time in the panel's time zone ``tz`` (a naive value is local time there;
an aware value is converted to it; in a naive panel an aware value keeps its own wall-clock
time). A date without a time of day (a ``datetime.date`` or a string such as ``"2024-02-09"``)
used as an *end* means the whole day, i.e. its last microsecond; as a start it means midnight.

Used by the panel loader's filters, the rolling engine's schedules and the workflow's data
window, so that ``end: 2024-02-09`` means the same thing everywhere.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from kronos_quant.errors import DataError

__all__ = ["is_date_only", "parse_bound", "bound_ns"]


def is_date_only(value: Any) -> bool:
    """Whether ``value`` names a day without a time of day (``datetime.date`` or ``"2024-02-09"``)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return True
    return isinstance(value, str) and len(value.strip()) <= 10 and ":" not in value


def parse_bound(value: Any, *, tz: str | None, is_end: bool, name: str | None = None) -> pd.Timestamp | None:
    """``value`` as a Timestamp in zone ``tz`` (naive when ``tz`` is None); None stays None.

    is_end: a date-only value becomes the last microsecond of that day. name: how the value is
    called in the error message (default ``"start"`` / ``"end"``). Raises DataError for a value
    that is not a date or time.
    """
    if value is None:
        return None
    label = name or ("end" if is_end else "start")
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"cannot read {label}={value!r} as a date or time; use 'YYYY-MM-DD' or "
                        "'YYYY-MM-DD HH:MM'") from exc
    if ts is pd.NaT:
        raise DataError(f"cannot read {label}={value!r} as a date or time; use 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM'")
    if is_end and is_date_only(value):
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    if tz is not None:
        return ts.tz_localize(tz) if ts.tzinfo is None else ts.tz_convert(tz)
    return ts.tz_localize(None) if ts.tzinfo is not None else ts


def bound_ns(value: Any, *, tz: str | None, is_end: bool, name: str | None = None) -> int | None:
    """``parse_bound`` as int64 UTC nanoseconds (naive panels: the wall-clock time read as UTC),
    comparable with ``data.arrays.InstrumentArrays.stamps_ns``."""
    ts = parse_bound(value, tz=tz, is_end=is_end, name=name)
    if ts is None:
        return None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.as_unit("ns").value)
