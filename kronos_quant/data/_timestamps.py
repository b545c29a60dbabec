"""Timestamp parsing and time zones for one raw column (used by ``_columns.py``).

Encodings: datetimes, dates, strings (ISO or ``timestamp_format``), yyyymmdd integers and epoch
numbers (seconds/ms/us/ns, which are instants in UTC; one unit per column, told by their size).

Time-zone rules (the panel's timestamps are the market's local time):

- naive input (no zone, no UTC offset) is wall-clock time. Without ``tz`` it stays naive; with
  ``tz`` it is read as local time in ``source_tz`` (default: ``tz``) and converted to ``tz`` (by the
  rule for aware input below).
- aware input (a zone in the dtype, an offset in the strings, epoch numbers) is never stripped.
  With ``tz`` every timestamp is put on the clock of ``tz`` by ``to_time_zone``: intraday bars are
  converted (the same instants); daily bars labelled at midnight in their source zone or offset keep
  their dates (midnight in ``tz``, with a note): converting them would move every bar to another
  day (UTC midnights are 19:00 the day before in New York). Without ``tz`` it keeps its one zone (the
  dtype's zone; the single UTC offset of all strings, as a fixed-offset zone; UTC for epochs).
  Strings with several different UTC offsets (two markets, or daylight saving time) and no
  ``tz`` are a DataError naming the offsets: only the market's zone puts them on one clock.
- a mix of naive and aware strings: with ``tz``, naive ones are read as local time in
  ``source_tz``/``tz`` and aware ones converted; without ``tz`` a DataError asks for it.

``to_time_zone`` is also how ``market_context`` puts aware data on the market's clock. Error hints
suggest the strategy's market zone (``_hints.hint_zone``).

Knows nothing about files, other columns or validation.
"""

from __future__ import annotations

import difflib
import warnings
import zoneinfo

import numpy as np
import pandas as pd
import polars as pl

from kronos_quant.data._hints import example_zone, option_hint, zone_examples
from kronos_quant.errors import DataError

__all__ = ["parse_timestamps", "to_time_zone", "is_daily_midnight"]

# a UTC offset (or Z / UTC / GMT) right after a time of day: "...10:00:00+08:00", "...T10:00Z"
_OFFSET_RE = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"


_UNITS = ("s", "ms", "us", "ns")
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def _epoch_unit(values: pd.Series, *, label: str, column: str) -> str:
    """The one epoch unit of ``values`` (from their size: seconds < 1e11 <= ms < 1e14 <= us < 1e17 <= ns);
    several units in one column is a DataError (no unit can be trusted for all of them)."""
    size = values.abs()
    units = pd.Series(np.select([size < 1e11, size < 1e14, size < 1e17], _UNITS[:3], "ns"), index=values.index)
    found = units.value_counts()
    if len(found) > 1:
        parts = ", ".join(f"{n} in {_UNIT_NAMES[u]} (e.g. {values[units == u].iloc[0]:.0f})"
                          for u, n in found.items())
        raise DataError(f"{label}: timestamp column '{column}' mixes epoch units: {parts}; write every timestamp "
                        "in one unit (e.g. seconds since 1970-01-01 UTC) or as dates")
    return str(found.index[0])


def _to_polars(parsed: pd.Series | pd.DatetimeIndex, name: str) -> pl.Series:
    return pl.from_pandas(pd.Series(parsed).dt.as_unit("us")).alias(name)


def _parse_numeric(series: pl.Series, *, label: str, column: str, notes: list[str]) -> pl.Series:
    """yyyymmdd integers -> naive dates; other numbers -> epoch instants (aware, UTC)."""
    values = series.cast(pl.Float64).to_pandas()
    present = values.dropna()
    finite = present[present.abs() < float("inf")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(finite) and ((finite % 1) == 0).all() and finite.between(18000101, 22001231).all():
            text = values.where(values.abs() < float("inf")).astype("Int64").astype("string")
            parsed = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
        elif len(finite):
            clean = values.where(values.abs() < 9.2e18)  # beyond int64 nanoseconds: unparseable
            parsed = pd.to_datetime(clean, unit=_epoch_unit(finite, label=label, column=column), errors="coerce",
                                    utc=True)
        else:
            parsed = pd.to_datetime(pd.Series([pd.NaT] * len(values)))
    n_bad = int(parsed.isna().sum() - values.isna().sum())
    if n_bad:
        notes.append(f"{n_bad} timestamp(s) in '{series.name}' could not be read as dates and are missing")
    return _to_polars(parsed, series.name)


def _parse_text(text: pl.Series, *, label: str, column: str, timestamp_format: str | None) -> pl.Series:
    """Naive or UTC-aware Datetime[us] from strings of one kind (all naive or all with offsets)."""
    try:
        return text.str.to_datetime(format=timestamp_format, time_unit="us", strict=True)
    except pl.exceptions.PolarsError:
        pass
    values = text.to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' "could not infer format" chatter
        for utc in (False, True):
            try:
                return _to_polars(pd.to_datetime(values, format=timestamp_format, utc=utc), text.name)
            except (ValueError, TypeError, OverflowError):
                continue
        coerced = pd.to_datetime(values, errors="coerce", format=timestamp_format, utc=True)
    bad = values[coerced.isna() & values.notna()]
    raise DataError(
        f"{label}: cannot parse timestamp column '{column}' (e.g. {bad.head(3).tolist()}); pass "
        f"{option_hint('timestamp_format', '%d/%m/%Y')} with the right format, or map another column "
        "with columns={...}") from None


def _where(mask: pl.Series, values: pl.Series) -> pl.Series:
    return values.zip_with(mask, pl.Series(values.name, [None] * len(values), dtype=values.dtype))


def _canonical_offset(text: str) -> str:
    if text.upper() in ("Z", "UTC", "GMT"):
        return "+00:00"
    digits = text[1:].replace(":", "")
    return f"{text[0]}{digits[:2]}:{digits[2:4] or '00'}"


def _offset_seconds(text: str) -> int:
    canonical = _canonical_offset(text)
    return (-1 if canonical[0] == "-" else 1) * (int(canonical[1:3]) * 3600 + int(canonical[4:6]) * 60)


def _wall_clock(parsed: pl.Series, offsets: pl.Series) -> pl.Series:
    """Naive wall-clock times of aware ``parsed`` strings in their own UTC offsets (``offsets``: the raw text)."""
    seconds = {raw: _offset_seconds(raw) for raw in offsets.drop_nulls().unique().to_list()}
    shift = offsets.replace_strict(seconds, default=None, return_dtype=pl.Int64) * 1_000_000
    return parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None) + shift.cast(pl.Duration("us"))


def is_daily_midnight(wall: pl.Series) -> bool:
    """Whether every present time of ``wall`` (wall-clock times, naive or in their own zone) is 00:00:00:
    daily bars labelled by their date. False when nothing is present."""
    present = wall.drop_nulls()
    if present.len() == 0:
        return False
    return bool(((present.dt.hour() == 0) & (present.dt.minute() == 0) & (present.dt.second() == 0)
                 & (present.dt.microsecond() == 0)).all())


def to_time_zone(ts: pl.Series, zone: str, *, wall: pl.Series | None = None, source: str | None = None
                 ) -> tuple[pl.Series, str | None]:
    """Aware ``ts`` on the clock of ``zone``: the one rule for putting aware bars in the market's zone.

    Intraday bars are converted (the same instants). Daily bars labelled at midnight in their SOURCE zone
    (every present ``wall`` time at 00:00:00; ``wall``: their naive wall-clock times there, default ``ts``'s
    own) keep their calendar dates as midnight in ``zone``: converting them would put every bar on another
    day (UTC midnights are 19:00 the day before in New York: Sundays appear). source: how the note names the
    source zone (default ``ts``'s zone). Returns the series and a note when the dates were kept where a
    conversion would have given other labels (None otherwise). Raises polars' error for an unknown zone.
    """
    converted = ts.dt.convert_time_zone(zone)
    local = ts.dt.replace_time_zone(None) if wall is None else wall
    if not is_daily_midnight(local):
        return converted, None
    kept = local.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    if kept.equals(converted):
        return kept, None
    moved = int((kept.dt.date() != converted.dt.date()).sum())
    where = source or ts.dtype.time_zone  # type: ignore[union-attr]
    note = (f"{local.drop_nulls().len()} daily bars labelled at midnight ({where}) keep their dates as midnight "
            f"in {zone}" + (f"; converting the instants would have moved {moved} of them to another calendar "
                            "day" if moved else ""))
    n_lost = int(kept.null_count() - local.null_count())
    if n_lost:
        note += f"; {n_lost} date(s) have no midnight in {zone} (a daylight-saving jump) and are missing"
    return kept, note


def _zone_problem(zone: str, exc: Exception) -> str:
    """One line on why ``zone`` was refused: the closest IANA names for an unknown one, else polars' first line."""
    names = zoneinfo.available_timezones()
    if zone in names:
        return str(exc).strip().splitlines()[0]
    close = difflib.get_close_matches(zone, sorted(names), n=2, cutoff=0.6)
    return "not an IANA time zone" + (f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "")


def _localize(ts: pl.Series, zone: str, *, label: str) -> pl.Series:
    try:
        return ts.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{label}: unknown time zone {zone!r} ({_zone_problem(zone, exc)}); use an IANA name "
                        f"such as {zone_examples()}") from exc


def _convert(ts: pl.Series, zone: str, *, label: str, notes: list[str], wall: pl.Series | None = None,
             source: str | None = None) -> tuple[pl.Series, bool]:
    """``to_time_zone`` with its note added to ``notes``; True when daily dates were kept (relabelled)."""
    try:
        out, note = to_time_zone(ts, zone, wall=wall, source=source)
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{label}: cannot convert timestamps to time zone {zone!r} ({_zone_problem(zone, exc)}); "
                        "use an IANA name such "
                        f"as {zone_examples()}, e.g. {option_hint('tz', example_zone())}") from exc
    if note:
        notes.append(note)
    return out, note is not None


def _to_market(ts: pl.Series, *, label: str, tz: str | None, source_tz: str | None, notes: list[str],
               wall: pl.Series | None = None, source: str | None = None) -> pl.Series:
    """Apply the module's rules to a parsed (naive or aware) series (``wall``/``source``: see ``to_time_zone``)."""
    if tz is None and source_tz is not None:
        raise DataError(f"{label}: source_tz={source_tz!r} needs tz=... (the output zone); "
                        f"e.g. {option_hint('tz', example_zone())}")
    if ts.dtype.time_zone is not None:  # type: ignore[union-attr]
        return ts if tz is None else _convert(ts, tz, label=label, notes=notes, wall=wall, source=source)[0]
    if tz is None:
        return ts
    out = _localize(ts, source_tz or tz, label=label)
    n_lost = int(out.null_count() - ts.null_count())
    if n_lost:
        notes.append(f"{n_lost} timestamp(s) do not exist in {source_tz or tz} (a daylight-saving jump) and are "
                     "missing")
    if source_tz and source_tz != tz:
        out, kept_dates = _convert(out, tz, label=label, notes=notes)
        if not kept_dates:
            notes.append(f"naive timestamps read as {source_tz} and converted to {tz}")
    return out


def _offset_text(text: pl.Series, *, label: str, column: str, timestamp_format: str | None, tz: str | None,
                 source_tz: str | None, notes: list[str]) -> pl.Series:
    """Strings, some or all with UTC offsets: parse and put them on the market clock."""
    offsets = text.str.extract(_OFFSET_RE, 1)
    aware = offsets.is_not_null()
    naive = text.is_not_null() & ~aware
    counts: dict[str, int] = {}
    for raw_offset, n in offsets.drop_nulls().alias("offset").value_counts(sort=True).iter_rows():
        key = _canonical_offset(raw_offset)
        counts[key] = counts.get(key, 0) + n
    source = f"their UTC offset{'s' if len(counts) > 1 else ''} {', '.join(counts)}"
    if naive.any() and aware.any():
        if tz is None:
            eg_naive = text.filter(naive).head(1).to_list()
            eg_aware = text.filter(aware).head(1).to_list()
            raise DataError(
                f"{label}: timestamp column '{column}' mixes timestamps with a UTC offset (e.g. {eg_aware}, "
                f"{int(aware.sum())} rows) and without one (e.g. {eg_naive}, {int(naive.sum())} rows); set the "
                f"market's time zone, e.g. {option_hint('tz', example_zone())}: timestamps with an offset are "
                "converted to it and those without are read as its local time (or make the file consistent)")
        with_offset = _parse_text(_where(aware, text), label=label, column=column, timestamp_format=timestamp_format)
        without = _parse_text(_where(naive, text), label=label, column=column, timestamp_format=timestamp_format)
        wall = _wall_clock(with_offset, offsets) if with_offset.dtype.time_zone else None  # type: ignore[union-attr]
        with_offset = _to_market(with_offset, label=label, tz=tz, source_tz=None, notes=notes, wall=wall,
                                 source=source)
        without = _to_market(without, label=label, tz=tz, source_tz=source_tz, notes=notes)
        notes.append(f"'{column}': {int(aware.sum())} timestamps with a UTC offset converted to {tz}, "
                     f"{int(naive.sum())} without one read as {source_tz or tz} local time")
        return with_offset.zip_with(aware, without)
    parsed = _parse_text(text, label=label, column=column, timestamp_format=timestamp_format)
    if parsed.dtype.time_zone is None:  # type: ignore[union-attr]  # a custom format without %z
        return _to_market(parsed, label=label, tz=tz, source_tz=source_tz, notes=notes)
    if tz is not None:
        if len(counts) > 1:
            notes.append(f"'{column}': UTC offsets {counts} converted to {tz}")
        return _convert(parsed, tz, label=label, notes=notes, wall=_wall_clock(parsed, offsets), source=source)[0]
    if len(counts) > 1:
        shown = dict(list(counts.items())[:6])
        raise DataError(
            f"{label}: timestamp column '{column}' has {len(counts)} different UTC offsets {shown} (rows per "
            "offset): two markets, or daylight-saving time; they cannot be put on one market clock without the "
            f"market's time zone: set {option_hint('tz', example_zone())}; every timestamp is converted to it")
    offset = next(iter(counts))
    zone = "UTC" if offset == "+00:00" else offset
    try:
        return parsed.dt.convert_time_zone(zone)
    except pl.exceptions.PolarsError:
        raise DataError(f"{label}: timestamp column '{column}' has the UTC offset {offset}, which is not a whole "
                        f"number of hours; set the market's time zone, e.g. {option_hint('tz', 'Asia/Kolkata')}"
                        ) from None


def parse_timestamps(series: pl.Series, *, label: str, column: str, timestamp_format: str | None, tz: str | None,
                     source_tz: str | None, notes: list[str]) -> pl.Series:
    """Datetime[us] on the market clock (see the module docstring) from any common timestamp encoding."""
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        parsed = series.dt.cast_time_unit("us")
    elif dtype == pl.Date:
        parsed = series.cast(pl.Datetime("us"))
    elif dtype.is_numeric():
        parsed = _parse_numeric(series, label=label, column=column, notes=notes)
    elif dtype == pl.Utf8:
        return _offset_text(series.str.strip_chars(), label=label, column=column, timestamp_format=timestamp_format,
                            tz=tz, source_tz=source_tz, notes=notes)
    else:
        raise DataError(f"{label}: timestamp column '{column}' has dtype {dtype}; expected dates, datetimes, "
                        "strings or epoch numbers; map another column with columns={...}")
    return _to_market(parsed, label=label, tz=tz, source_tz=source_tz, notes=notes)
