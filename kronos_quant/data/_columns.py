"""Column mapping, dtype coercion and timestamp parsing for one raw frame (used by ``panel.py``).

Owns the alias table (which source column names mean which panel column), turning pandas
frames into polars ones, and parsing timestamps given as datetimes, dates, strings, yyyymmdd
integers or epoch numbers. Knows nothing about files on disk, validation rules or models.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping

import pandas as pd
import polars as pl

from kronos_quant.errors import DataError
from kronos_quant.schema import FIELDS, PANEL_COLUMNS

__all__ = ["FIELD_COLUMNS", "COLUMN_ALIASES", "normalise_name", "frame_from_pandas", "standardise_frame"]

FIELD_COLUMNS: tuple[str, ...] = FIELDS
REQUIRED: tuple[str, ...] = ("timestamp", "open", "high", "low", "close")

# Normalised names (lower case, letters and digits only), best first.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "instrument": ("instrument", "ticker", "symbol", "code", "tscode", "secid", "securityid", "asset",
                   "stock", "stockcode", "sym", "instrumentid", "name"),
    "timestamp": ("timestamp", "timestamps", "datetime", "date", "time", "dt", "tradedate", "tradingdate",
                  "datetimeutc", "ts", "opentime", "bartime"),
    "open": ("open", "openprice", "o", "adjopen"),
    "high": ("high", "highprice", "h", "adjhigh"),
    "low": ("low", "lowprice", "l", "adjlow"),
    "close": ("close", "closeprice", "last", "c", "adjclose"),
    "volume": ("volume", "vol", "v", "qty", "shares", "adjvolume"),
    "amount": ("amount", "amt", "turnover", "value", "money", "quotevolume", "dollarvolume", "notional"),
}


def normalise_name(name: str) -> str:
    """``'Adj Close'`` -> ``'adjclose'``: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


# ----------------------------------------------------------------------------- pandas -> polars
def _stack_ticker_level(frame: pd.DataFrame) -> pd.DataFrame:
    """yfinance-style columns (field, ticker) or (ticker, field) -> long rows with an instrument column."""
    known = {a for aliases in COLUMN_ALIASES.values() for a in aliases}
    scores = [sum(normalise_name(v) in known for v in frame.columns.get_level_values(i).unique())
              for i in range(frame.columns.nlevels)]
    field_level = max(range(len(scores)), key=scores.__getitem__)
    ticker_levels = [i for i in range(frame.columns.nlevels) if i != field_level]
    long = frame.stack(level=ticker_levels)
    names = list(long.index.names)
    names[-1] = names[-1] if names[-1] and normalise_name(names[-1]) in COLUMN_ALIASES["instrument"] \
        else "instrument"
    long.index = long.index.set_names(names)
    long.columns = [str(c) for c in long.columns]
    return long


def frame_from_pandas(frame: pd.DataFrame, *, label: str) -> pl.DataFrame:
    """A polars frame from a pandas one, turning a DatetimeIndex / MultiIndex / ticker level into columns."""
    if isinstance(frame.columns, pd.MultiIndex):
        frame = _stack_ticker_level(frame)
    index_is_data = isinstance(frame.index, (pd.DatetimeIndex, pd.MultiIndex)) or (
        frame.index.name is not None and normalise_name(frame.index.name) in
        COLUMN_ALIASES["timestamp"] + COLUMN_ALIASES["instrument"])
    if index_is_data:
        names = [n if n is not None else ("timestamp" if isinstance(lvl, pd.DatetimeIndex) else f"level_{i}")
                 for i, (n, lvl) in enumerate(zip(frame.index.names, _levels(frame.index)))]
        frame = frame.copy()
        frame.index = frame.index.set_names(names)
        frame = frame.reset_index()
    frame.columns = [str(c) for c in frame.columns]
    try:
        return pl.from_pandas(frame)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for mixed object columns
        raise DataError(f"{label}: cannot convert the pandas frame ({exc}); make each column one type") from exc


def _levels(index: pd.Index) -> list[pd.Index]:
    if isinstance(index, pd.MultiIndex):
        return [index.get_level_values(i) for i in range(index.nlevels)]
    return [index]


# ----------------------------------------------------------------------------- column mapping
def _resolve(raw_columns: list[str], *, label: str, columns: Mapping[str, str] | None,
             notes: list[str]) -> dict[str, str]:
    """{panel column: source column}."""
    mapping: dict[str, str] = {}
    for src, dst in (columns or {}).items():
        if dst not in PANEL_COLUMNS:
            raise DataError(f"{label}: columns={{{src!r}: {dst!r}}} maps to an unknown panel column; "
                            f"use one of {list(PANEL_COLUMNS)}")
        if src not in raw_columns:
            continue  # the mapping may be meant for other files of a directory
        mapping[dst] = src
    used = set(mapping.values())
    by_norm: dict[str, list[str]] = {}
    for col in raw_columns:
        by_norm.setdefault(normalise_name(col), []).append(col)
    for target, aliases in COLUMN_ALIASES.items():
        if target in mapping:
            continue
        for alias in aliases:
            candidates = [c for c in by_norm.get(alias, []) if c not in used]
            if candidates:
                mapping[target] = candidates[0]
                used.add(candidates[0])
                break
    if "close" in mapping and normalise_name(mapping["close"]) != "adjclose" and "adjclose" in by_norm:
        adj = by_norm["adjclose"][0]
        notes.append(f"{label}: using '{mapping['close']}' as close and ignoring '{adj}'; pass "
                     f"columns={{{adj!r}: 'close'}} to use adjusted closes (open/high/low stay unadjusted)")
    return mapping


def _missing_column_error(label: str, target: str, raw_columns: list[str], mapping: dict[str, str]) -> DataError:
    spare = [c for c in raw_columns if c not in mapping.values()]
    example = spare[0] if spare else "YourColumn"
    return DataError(f"{label}: no {target} column; found {raw_columns}; pass columns={{{example!r}: {target!r}}}")


# ----------------------------------------------------------------------------- timestamps
def _epoch_unit(values: pd.Series) -> str:
    top = float(values.abs().max())
    return "s" if top < 1e11 else "ms" if top < 1e14 else "us" if top < 1e17 else "ns"


def parse_timestamps(series: pl.Series, *, label: str, column: str, timestamp_format: str | None) -> pl.Series:
    """Datetime[us] (aware when the input carries a zone) from any common timestamp encoding."""
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        return series.dt.cast_time_unit("us")
    if dtype == pl.Date:
        return series.cast(pl.Datetime("us"))
    if dtype.is_numeric():
        values = series.to_pandas()
        present = values.dropna()
        if len(present) and ((present % 1) == 0).all() and present.between(18000101, 22001231).all():
            parsed = pd.to_datetime(values.astype("Int64").astype("string"), format="%Y%m%d", errors="coerce")
        elif len(present) and dtype.is_numeric():
            parsed = pd.to_datetime(values, unit=_epoch_unit(present), errors="coerce")
        else:
            parsed = pd.to_datetime(values)
        return pl.from_pandas(pd.Series(parsed).dt.as_unit("us")).alias(series.name)
    if dtype != pl.Utf8:
        raise DataError(f"{label}: timestamp column '{column}' has dtype {dtype}; expected dates, datetimes, "
                        "strings or epoch numbers")
    text = series.str.strip_chars()
    try:
        return text.str.to_datetime(format=timestamp_format, time_unit="us", strict=True)
    except pl.exceptions.PolarsError:
        pass
    values = text.to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas' "could not infer format" chatter
        try:
            parsed = pd.to_datetime(values, format=timestamp_format)
        except (ValueError, TypeError, OverflowError):
            try:
                parsed = pd.to_datetime(values, format=timestamp_format, utc=True)
            except (ValueError, TypeError, OverflowError):
                coerced = pd.to_datetime(values, errors="coerce", format=timestamp_format, utc=True)
                bad = values[coerced.isna() & values.notna()]
                raise DataError(
                    f"{label}: cannot parse timestamp column '{column}' (e.g. {bad.head(3).tolist()}); pass "
                    "timestamp_format='%d/%m/%Y' (or the right format) or map another column with columns={...}"
                ) from None
    return pl.from_pandas(pd.Series(parsed).dt.as_unit("us")).alias(series.name)


def _apply_tz(ts: pl.Series, *, label: str, tz: str | None, source_tz: str | None, notes: list[str]) -> pl.Series:
    current = ts.dtype.time_zone  # type: ignore[union-attr]
    try:
        if current is not None:
            return ts.dt.convert_time_zone(tz) if tz else ts.dt.replace_time_zone(None)
        if tz is None:
            if source_tz is not None:
                raise DataError(f"{label}: source_tz={source_tz!r} needs tz=... (the output zone)")
            return ts
        out = ts.dt.replace_time_zone(source_tz or tz, ambiguous="earliest", non_existent="null")
        if source_tz and source_tz != tz:
            out = out.dt.convert_time_zone(tz)
            notes.append(f"{label}: naive timestamps read as {source_tz} and converted to {tz}")
        return out
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{label}: time zone conversion failed ({exc}); use an IANA name such as "
                        "'America/New_York' or 'Asia/Shanghai'") from exc


# ----------------------------------------------------------------------------- one frame
def _to_float(series: pl.Series, *, label: str, column: str, target: str, notes: list[str]) -> pl.Series:
    if series.dtype == pl.Boolean or isinstance(series.dtype, (pl.Datetime, pl.Date)):
        raise DataError(f"{label}: column '{column}' (mapped to {target}) has dtype {series.dtype}, not numbers; "
                        f"map the right column with columns={{'YourColumn': {target!r}}}")
    if series.dtype == pl.Utf8:
        text = series.str.strip_chars().str.replace_all(",", "")
        out = text.cast(pl.Float64, strict=False)
        n_bad = int((text.is_not_null() & out.is_null()).sum())
        if n_bad and n_bad == int(text.is_not_null().sum()):
            raise DataError(f"{label}: column '{column}' (mapped to {target}) has no numeric values "
                            f"(e.g. {text.drop_nulls().head(3).to_list()}); map another column with columns=...")
        if n_bad:
            examples = text.filter(text.is_not_null() & out.is_null()).head(3).to_list()
            notes.append(f"{label}: {n_bad} non-numeric value(s) in '{column}' read as missing (e.g. {examples})")
    else:
        try:
            out = series.cast(pl.Float64)
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"{label}: column '{column}' (mapped to {target}) is not numeric ({exc})") from exc
    n_nonfinite = int(out.is_nan().sum() + out.is_infinite().sum())
    if n_nonfinite:
        notes.append(f"{label}: {n_nonfinite} NaN/inf value(s) in '{column}' read as missing")
        out = out.set(out.is_nan() | out.is_infinite(), None)
    return out.alias(target)


def standardise_frame(
    raw: pl.DataFrame, *, label: str, columns: Mapping[str, str] | None, instrument: str | None,
    tz: str | None, source_tz: str | None, timestamp_format: str | None, notes: list[str],
    instrument_from_stem: bool = False,
) -> pl.DataFrame:
    """Map, coerce and complete one raw frame into panel columns (rows in their original order)."""
    raw_columns = [str(c) for c in raw.columns]
    mapping = _resolve(raw_columns, label=label, columns=columns, notes=notes)
    by_norm = {normalise_name(c): c for c in raw_columns}
    date_col, time_col = mapping.get("timestamp"), by_norm.get("time")
    if (date_col is not None and time_col is not None and time_col != date_col
            and "timestamp" not in (columns or {}).values()
            and normalise_name(date_col) in ("date", "tradedate", "tradingdate")):
        combined = pl.concat_str([raw[date_col].cast(pl.Utf8), raw[time_col].cast(pl.Utf8)], separator=" ")
        raw = raw.with_columns(combined.alias("__timestamp__"))
        mapping["timestamp"] = "__timestamp__"
        notes.append(f"{label}: timestamp built from columns '{date_col}' + '{time_col}'")
    for target in REQUIRED:
        if target not in mapping:
            raise _missing_column_error(label, target, raw_columns, mapping)
    n = raw.height
    ts = parse_timestamps(raw[mapping["timestamp"]], label=label, column=mapping["timestamp"],
                          timestamp_format=timestamp_format)
    ts = _apply_tz(ts, label=label, tz=tz, source_tz=source_tz, notes=notes).alias("timestamp")
    if "instrument" in mapping:
        if instrument is not None and not instrument_from_stem:
            raise DataError(f"{label}: has an instrument column '{mapping['instrument']}', so instrument="
                            f"{instrument!r} is ambiguous; use instruments=[{instrument!r}] to filter instead")
        inst = raw[mapping["instrument"]].cast(pl.Utf8).str.strip_chars().alias("instrument")
    elif instrument is not None:
        inst = pl.Series("instrument", [str(instrument)] * n, dtype=pl.Utf8)
    else:
        raise DataError(f"{label}: no instrument column; found {raw_columns}; pass instrument='NAME' for "
                        "a single instrument or columns={'YourColumn': 'instrument'}")
    out: dict[str, pl.Series] = {"instrument": inst, "timestamp": ts}
    for target in ("open", "high", "low", "close"):
        out[target] = _to_float(raw[mapping[target]], label=label, column=mapping[target], target=target,
                                notes=notes)
    if "volume" in mapping:
        out["volume"] = _to_float(raw[mapping["volume"]], label=label, column=mapping["volume"], target="volume",
                                  notes=notes)
    else:
        out["volume"] = pl.Series("volume", [0.0] * n, dtype=pl.Float64)
        notes.append(f"{label}: no volume column; volume set to 0")
    if "amount" in mapping:
        out["amount"] = _to_float(raw[mapping["amount"]], label=label, column=mapping["amount"], target="amount",
                                  notes=notes)
    else:
        typical = (out["open"] + out["high"] + out["low"] + out["close"]) / 4.0
        out["amount"] = (out["volume"] * typical).alias("amount")
        notes.append(f"{label}: no amount column; amount = volume x mean(open, high, low, close)")
    return pl.DataFrame([out[c] for c in PANEL_COLUMNS])
