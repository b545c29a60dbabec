"""Column mapping and dtype coercion for one raw frame (used by ``panel.py``).

Owns the alias table (which source column names mean which panel column, including the names
akshare, tushare and baostock exports use, Chinese ones too), turning pandas frames into polars
ones, and the text-to-number rules (``1,234.5`` is a number; a decimal comma is not, except in
``;``-separated files, see ``_files.py``). A file without a recognised instrument column that looks
like several instruments is refused by ``_identifier.py``. Timestamps: ``_timestamps.py``; price
adjustment: ``adjust.py``.
Knows nothing about files on disk, validation rules or models.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import polars as pl

from kronos_quant.data._hints import columns_hint
from kronos_quant.data._identifier import check_identifier, guess_identifier
from kronos_quant.data._timestamps import parse_timestamps
from kronos_quant.data.adjust import adjustment_factor, apply_factor
from kronos_quant.errors import DataError
from kronos_quant.schema import FIELDS, PANEL_COLUMNS

__all__ = ["FIELD_COLUMNS", "COLUMN_ALIASES", "EXTRA_ALIASES", "normalise_name", "frame_from_pandas",
           "standardise_frame"]

FIELD_COLUMNS: tuple[str, ...] = FIELDS
REQUIRED: tuple[str, ...] = ("timestamp", "open", "high", "low", "close")

# Normalised names (lower case, letters and digits only), best first. Sources: Yahoo/yfinance,
# tushare (ts_code, trade_date, vol, amount), baostock (code, date, time, volume, amount), akshare
# (日期 date, 股票代码/代码 code, 开盘 open, 收盘 close, 最高 high, 最低 low, 成交量 volume,
# 成交额 amount; the original Kronos examples also write 开盘价/收盘价/最高价/最低价). Units
# are not converted: tushare's vol is in lots of 100 shares and its amount in thousands of CNY.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "instrument": ("instrument", "ticker", "symbol", "code", "tscode", "secid", "securityid", "asset",
                   "stock", "stockcode", "sym", "instrumentid", "股票代码", "证券代码", "代码", "name"),
    "timestamp": ("timestamp", "timestamps", "datetime", "date", "time", "dt", "tradedate", "tradingdate",
                  "datetimeutc", "ts", "opentime", "bartime", "日期", "交易日期", "日期时间", "时间"),
    "open": ("open", "openprice", "o", "开盘", "开盘价", "今开", "adjopen"),
    "high": ("high", "highprice", "h", "最高", "最高价", "adjhigh"),
    "low": ("low", "lowprice", "l", "最低", "最低价", "adjlow"),
    "close": ("close", "closeprice", "last", "c", "收盘", "收盘价", "adjclose"),
    "volume": ("volume", "vol", "v", "qty", "shares", "成交量", "adjvolume"),
    "amount": ("amount", "amt", "turnover", "value", "money", "quotevolume", "dollarvolume", "notional",
               "成交额", "成交金额"),
}
# Columns that are not panel columns but feed ``adjust`` (see adjust.py).
EXTRA_ALIASES: dict[str, tuple[str, ...]] = {
    "adj_close": ("adjclose", "adjustedclose", "closeadj", "adjclosingprice"),
    "split_ratio": ("stocksplits", "splitratio", "splitcoefficient", "splitfactor", "splits", "split"),
}
_TIME_OF_DAY = ("time", "时间")
_THOUSANDS = r"^[+-]?(\d{1,3}(,\d{3})+|\d{1,2}(,\d{2})+,\d{3})(\.\d*)?$"  # 1,234.5 and 1,23,456.5
_DATE_ONLY = ("date", "tradedate", "tradingdate", "日期", "交易日期")


def normalise_name(name: str) -> str:
    """``'Adj Close'`` -> ``'adjclose'``, ``'股票代码'`` -> ``'股票代码'``: lower case, letters and digits only."""
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


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
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)  # a copy: the caller's frame is untouched
    try:
        return pl.from_pandas(frame)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for mixed object columns
        raise DataError(f"{label}: cannot convert the pandas frame ({exc}); make each column one type") from exc


def _levels(index: pd.Index) -> list[pd.Index]:
    if isinstance(index, pd.MultiIndex):
        return [index.get_level_values(i) for i in range(index.nlevels)]
    return [index]


# ----------------------------------------------------------------------------- column mapping
_TARGETS: tuple[str, ...] = (*PANEL_COLUMNS, *EXTRA_ALIASES)


def _resolve(raw_columns: list[str], *, label: str, columns: Mapping[str, str] | None, adjust: str,
             notes: list[str]) -> dict[str, str]:
    """{panel column (or adj_close / split_ratio when ``adjust`` needs them): source column}."""
    mapping: dict[str, str] = {}
    for src, dst in (columns or {}).items():
        if dst not in _TARGETS:
            raise DataError(f"{label}: columns={{{src!r}: {dst!r}}} maps to an unknown panel column; "
                            f"use one of {list(_TARGETS)}")
        if src not in raw_columns:
            continue  # the mapping may be meant for other files of a directory
        mapping[dst] = src
    used = set(mapping.values())
    by_norm: dict[str, list[str]] = {}
    for col in raw_columns:
        by_norm.setdefault(normalise_name(col), []).append(col)
    wanted = COLUMN_ALIASES | (EXTRA_ALIASES if adjust != "none" else {})
    for target, aliases in wanted.items():
        if target in mapping:
            continue
        for alias in aliases:
            candidates = [c for c in by_norm.get(alias, []) if c not in used]
            if len(candidates) > 1:
                raise DataError(f"{label}: columns {candidates} could each be the {target} column (their names differ "
                                f"only in case, spaces or punctuation); pick one with "
                                f"{columns_hint(candidates[0], target)}, or delete the others")
            if candidates:
                mapping[target] = candidates[0]
                used.add(candidates[0])
                break
    spare_adj = [c for c in by_norm.get("adjclose", []) if c not in used]
    if adjust == "none" and "close" in mapping and spare_adj:
        notes.append(f"using '{mapping['close']}' as close and ignoring '{spare_adj[0]}'; pass adjust='total_return' "
                     "(strategy file: data.adjust: total_return) to back-adjust OHLC for splits and dividends")
    return mapping


def _missing_column_error(label: str, target: str, raw_columns: list[str], mapping: dict[str, str]) -> DataError:
    spare = [c for c in raw_columns if c not in mapping.values()]
    example = spare[0] if spare else "YourColumn"
    return DataError(f"{label}: no {target} column; found {raw_columns}; pass {columns_hint(example, target)}")


def _timestamp_source(raw: pl.DataFrame, mapping: dict[str, str], *, explicit: bool,
                      notes: list[str]) -> pl.DataFrame:
    """Combine separate date and time-of-day columns (or use baostock's full ``time``) into ``__timestamp__``."""
    date_col = mapping.get("timestamp")
    time_col = next((c for c in raw.columns if normalise_name(c) in _TIME_OF_DAY and c != date_col), None)
    if date_col is None or time_col is None or explicit or normalise_name(date_col) not in _DATE_ONLY:
        return raw
    text = raw[time_col].cast(pl.Utf8).str.strip_chars()
    if text.drop_nulls().len() and text.drop_nulls().str.contains(r"^\d{14}(\d{3})?$").all():
        stamps = text.str.slice(0, 14).str.to_datetime("%Y%m%d%H%M%S", time_unit="us", strict=False)
        notes.append(f"timestamp read from '{time_col}' (yyyymmddHHMMSSsss, as baostock writes it)")
    else:
        stamps = pl.concat_str([raw[date_col].cast(pl.Utf8), text], separator=" ")
        notes.append(f"timestamp built from columns '{date_col}' + '{time_col}'")
    mapping["timestamp"] = "__timestamp__"
    return raw.with_columns(stamps.alias("__timestamp__"))


def _not_identifiers(raw_columns: list[str], mapping: dict[str, str]) -> set[str]:
    """Columns that cannot be an unrecognised identifier: mapped ones and those named like panel columns."""
    named = {a for target, aliases in (COLUMN_ALIASES | EXTRA_ALIASES).items() if target != "instrument"
             for a in aliases}
    return set(mapping.values()) | {c for c in raw_columns if normalise_name(c) in named}


# ----------------------------------------------------------------------------- one frame
def _to_float(series: pl.Series, *, label: str, column: str, target: str, notes: list[str]) -> pl.Series:
    if series.dtype == pl.Boolean or isinstance(series.dtype, (pl.Datetime, pl.Date)):
        raise DataError(f"{label}: column '{column}' (mapped to {target}) has dtype {series.dtype}, not numbers; "
                        f"map the right column with {columns_hint('YourColumn', target)}")
    if series.dtype == pl.Utf8:
        text = series.str.strip_chars()
        grouped = text.str.contains(_THOUSANDS)  # "1,234.5"; a decimal comma ("10,5") is not a number here
        text = text.zip_with(~grouped.fill_null(False), text.str.replace_all(",", "", literal=True))
        out = text.cast(pl.Float64, strict=False)
        n_bad = int((text.is_not_null() & out.is_null()).sum())
        if n_bad and n_bad == int(text.is_not_null().sum()):
            raise DataError(f"{label}: column '{column}' (mapped to {target}) has no numeric values "
                            f"(e.g. {text.drop_nulls().head(3).to_list()}); map another column with columns=...")
        if n_bad:
            examples = text.filter(text.is_not_null() & out.is_null()).head(3).to_list()
            comma = " (decimal commas are read only in ';'-separated files)" if any("," in e for e in examples) else ""
            notes.append(f"{n_bad} non-numeric value(s) in '{column}' read as missing (e.g. {examples}){comma}")
    else:
        try:
            out = series.cast(pl.Float64)
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"{label}: column '{column}' (mapped to {target}) is not numeric ({exc})") from exc
    nonfinite = out.is_nan() | out.is_infinite()
    n_nonfinite = int(nonfinite.sum())
    if n_nonfinite:
        notes.append(f"{n_nonfinite} NaN/inf value(s) in '{column}' read as missing")
        out = out.set(nonfinite.fill_null(False), None)  # type: ignore[arg-type]
    return out.alias(target)


def standardise_frame(
    raw: pl.DataFrame, *, label: str, columns: Mapping[str, str] | None, instrument: str | None,
    tz: str | None, source_tz: str | None, timestamp_format: str | None, notes: list[str],
    instrument_from_stem: bool = False, adjust: str = "none",
) -> pl.DataFrame:
    """Map, coerce, adjust and complete one raw frame into panel columns (rows in their original order).

    ``notes`` gets what was done, without the label (the caller names the source once).
    """
    raw_columns = [str(c) for c in raw.columns]
    mapping = _resolve(raw_columns, label=label, columns=columns, adjust=adjust, notes=notes)
    raw = _timestamp_source(raw, mapping, explicit="timestamp" in (columns or {}).values(), notes=notes)
    for target in ("timestamp", "open", "high", "low", "close"):
        if target not in mapping:
            raise _missing_column_error(label, target, raw_columns, mapping)
    n = raw.height
    ts = parse_timestamps(raw[mapping["timestamp"]], label=label, column=mapping["timestamp"],
                          timestamp_format=timestamp_format, tz=tz, source_tz=source_tz,
                          notes=notes).alias("timestamp")
    if "instrument" in mapping:
        if instrument is not None and not instrument_from_stem:
            raise DataError(f"{label}: has an instrument column '{mapping['instrument']}', so instrument="
                            f"{instrument!r} is ambiguous; use instruments=[{instrument!r}] to filter instead")
        inst = raw[mapping["instrument"]].cast(pl.Utf8).str.strip_chars().alias("instrument")
    elif instrument is not None:
        if instrument_from_stem:
            check_identifier(raw, ts, label=label, raw_columns=raw_columns, skip=_not_identifiers(raw_columns, mapping),
                             close=mapping["close"], name=str(instrument), notes=notes)
        inst = pl.Series("instrument", [str(instrument)] * n, dtype=pl.Utf8)
    else:
        guess = guess_identifier(raw, ts, raw_columns=raw_columns, skip=_not_identifiers(raw_columns, mapping))
        raise DataError(f"{label}: no instrument column; found {raw_columns}; pass instrument='NAME' for "
                        f"a single instrument or {columns_hint(guess or 'YourColumn', 'instrument')}")
    out: dict[str, pl.Series] = {"instrument": inst, "timestamp": ts}
    for target in ("open", "high", "low", "close", "volume", "adj_close", "split_ratio"):
        if target in mapping:
            out[target] = _to_float(raw[mapping[target]], label=label, column=mapping[target], target=target,
                                    notes=notes)
    if "volume" not in out:
        out["volume"] = pl.Series("volume", [0.0] * n, dtype=pl.Float64)
        notes.append("no volume column; volume set to 0")
    factor = adjustment_factor(adjust=adjust, label=label, raw_columns=raw_columns, close=out["close"],
                               adj_close=out.get("adj_close"), split_ratio=out.get("split_ratio"),
                               instrument=inst, timestamp=ts, notes=notes)
    apply_factor(out, factor)
    if "amount" in mapping:
        out["amount"] = _to_float(raw[mapping["amount"]], label=label, column=mapping["amount"], target="amount",
                                  notes=notes)
    else:
        typical = (out["open"] + out["high"] + out["low"] + out["close"]) / 4.0
        out["amount"] = (out["volume"] * typical).alias("amount")
        notes.append("no amount column; amount = volume x mean(open, high, low, close)")
    return pl.DataFrame([out[c] for c in PANEL_COLUMNS])
