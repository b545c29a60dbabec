"""Load market data from files or frames into the one standard panel.

This module owns reading long-format CSV/Parquet files, directories of per-instrument files and
in-memory pandas/polars frames into panel columns, the instrument and date filters, the loader
options (``LoadOptions``), wide views and content fingerprints. The panel's schema and check
live in ``contract.py``; cleaning rules in ``validate.py``; column aliases in ``_columns.py``;
unrecognised identifier columns in ``_identifier.py``; timestamps and time zones in
``_timestamps.py``; split/dividend adjustment in ``adjust.py``; file formats, separators and text
encodings in ``_files.py``.

Panel: a polars DataFrame with exactly ``schema.PANEL_COLUMNS`` -- instrument (Utf8), timestamp
(Datetime, microseconds; naive, or aware in the market's time zone), open, high, low, close
(price units), volume (shares/lots), amount (currency) as Float64 -- sorted by (instrument,
timestamp).

Knows nothing about models, forecasts or backtests.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np
import pandas as pd
import polars as pl

from kronos_quant.data._columns import FIELD_COLUMNS, frame_from_pandas, standardise_frame
from kronos_quant.data._files import SUPPORTED_SUFFIXES, Source, list_files, read_file
from kronos_quant.data._hints import example_zone, option_hint
from kronos_quant.data.adjust import Adjust
from kronos_quant.data.bounds import parse_bound
from kronos_quant.data.contract import PANEL_SCHEMA, check_panel, empty_panel
from kronos_quant.data.report import ValidationReport, fmt_time
from kronos_quant.data.validate import DEFAULT_JUMP_THRESHOLD, DEFAULT_MAX_GAP_BARS, Policy, validate_panel
from kronos_quant.errors import DataError
from kronos_quant.schema import PANEL_COLUMNS
from kronos_quant.utils.hashing import stable_hash

__all__ = [
    "PANEL_SCHEMA",
    "SUPPORTED_SUFFIXES",
    "LoadOptions",
    "ReadOptions",
    "empty_panel",
    "check_panel",
    "read_panel",
    "load_panel",
    "load_panel_with_report",
    "panel_to_wide",
    "data_fingerprint",
]

logger = logging.getLogger(__name__)


class ReadOptions(TypedDict, total=False):
    """How to read a source (all optional, keyword-only).

    columns: explicit mapping ``{source name: panel name}`` (or ``adj_close`` / ``split_ratio``),
    applied before the automatic aliases (case-insensitive ``Date``/``timestamps``/``日期``,
    ``ticker``/``symbol``/``code``/``ts_code``/``股票代码``, ``vol``/``成交量``, ``amt``/``成交额`` ...).
    instruments, start, end: filters (inclusive; a date-only ``end`` includes the whole day).
    tz: the market's time zone (IANA name). Aware timestamps are converted to it; naive ones are
    read as local time in ``source_tz`` (default ``tz``). None: naive stays naive, aware keeps its
    one zone, and several UTC offsets are an error (see ``_timestamps.py``).
    instrument: name of a single-instrument file/frame without an instrument column (default for a
    file: its stem). timestamp_format: strftime format for string timestamps (default: inferred,
    month-first for ambiguous ``01/02/2024``). encoding: text encoding of CSV/TSV files (default
    UTF-8; anything else must be named, e.g. ``"gb18030"``). adjust: ``"none"`` (default),
    ``"total_return"`` or ``"splits"`` (see ``adjust.py``).
    """

    columns: Mapping[str, str] | None
    instruments: Sequence[str] | None
    start: Any
    end: Any
    tz: str | None
    source_tz: str | None
    instrument: str | None
    timestamp_format: str | None
    encoding: str | None
    adjust: Adjust


class LoadOptions(ReadOptions, total=False):
    """``ReadOptions`` plus validation: validate (default True), policy ("raise" (default) | "drop" |
    "fill"), exclude (checks whose failing instruments are dropped: "jumps", "gaps"), max_gap_bars
    (a longer gap breaks an instrument's history), jump_threshold (|log close return| flagged).
    See ``validate.validate_panel``."""

    validate: bool
    policy: Policy
    exclude: Sequence[str]
    max_gap_bars: int
    jump_threshold: float


_DEFAULTS: dict[str, Any] = {"adjust": "none", "validate": True, "policy": "raise", "exclude": (),
                             "max_gap_bars": DEFAULT_MAX_GAP_BARS, "jump_threshold": DEFAULT_JUMP_THRESHOLD}


def _complete(options: Mapping[str, Any], spec: type) -> dict[str, Any]:
    """Every key of the TypedDict ``spec``, with defaults; an unknown key is a TypeError naming it."""
    keys = spec.__required_keys__ | spec.__optional_keys__  # type: ignore[attr-defined]
    unknown = sorted(set(options) - keys)
    if unknown:
        raise TypeError(f"unexpected option(s) {unknown}; known options: {sorted(keys)}")
    return {k: options.get(k, _DEFAULTS.get(k)) for k in keys}


def _stem(path: Path) -> str:
    return path.stem


def _concat(frames: list[pl.DataFrame], names: list[str], *, label: str) -> pl.DataFrame:
    zones = {f.schema["timestamp"].time_zone for f in frames}  # type: ignore[union-attr]
    if len(zones) > 1:
        per = {n: f.schema["timestamp"].time_zone for n, f in zip(names, frames)}  # type: ignore[union-attr]
        shown = dict(list(per.items())[:6])
        raise DataError(f"{label}: files have different time zones {shown}; set the market's time zone, e.g. "
                        f"{option_hint('tz', example_zone())}, and every file is converted to it")
    return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]


def read_panel(source: Source, **options: Unpack[ReadOptions]) -> tuple[pl.DataFrame, list[str]]:
    """Read ``source`` into panel columns and dtypes WITHOUT validating or sorting it.

    Rows keep their file order (so validation can see out-of-order files). Returns the frame and
    notes on what the loader did (column mapping, derived columns, adjustment, filters), each
    without the source's name. Options: ``ReadOptions``; see ``load_panel``.
    """
    o = _complete(options, ReadOptions)
    notes: list[str] = []
    wanted = None if o["instruments"] is None else [str(i) for i in o["instruments"]]
    common = dict(columns=o["columns"], tz=o["tz"], source_tz=o["source_tz"], timestamp_format=o["timestamp_format"],
                  adjust=o["adjust"])
    if isinstance(source, (pd.DataFrame, pl.DataFrame)):
        label = "<DataFrame>"
        raw = frame_from_pandas(source, label=label) if isinstance(source, pd.DataFrame) else source
        frame = standardise_frame(raw, label=label, instrument=o["instrument"], notes=notes, **common)
    else:
        files, per_instrument = list_files(source)
        label = str(source) if isinstance(source, (str, Path)) else f"{len(files)} files"
        if per_instrument and wanted is not None and set(wanted) <= {_stem(p) for p in files}:
            files = [p for p in files if _stem(p) in set(wanted)]  # skip files of other instruments unread
        file_notes: dict[str, list[str]] = {}
        frames = []
        for path in files:
            default_name = _stem(path) if per_instrument or o["instrument"] is None else o["instrument"]
            these: list[str] = []
            raw = read_file(path, label=str(path), columns=o["columns"], encoding=o["encoding"], notes=these)
            frames.append(standardise_frame(raw, label=str(path), instrument=default_name, notes=these,
                                            instrument_from_stem=o["instrument"] is None, **common))
            for note in these:
                file_notes.setdefault(note, []).append(path.name)
        frame = _concat(frames, [p.name for p in files], label=label)
        if per_instrument:
            notes.append(f"read {len(files)} files")
        for message, names in file_notes.items():
            where = names[0] if len(names) == 1 else f"{len(names)} files, e.g. {names[0]}"
            notes.append(f"{message} ({where})" if per_instrument else message)
    n_read = frame.height
    if wanted is not None:
        present = set(frame["instrument"].drop_nulls().unique().to_list())
        absent = [i for i in wanted if i not in present]
        if len(absent) == len(wanted):
            raise DataError(f"{label}: none of instruments={wanted[:10]} are in the data; "
                            f"it has {sorted(present)[:20]}{' ...' if len(present) > 20 else ''}")
        if absent:
            logger.warning("%s: requested instruments not in the data: %s", label, absent)
            notes.append(f"requested instruments not in the data: {absent}")
        frame = frame.filter(pl.col("instrument").is_in(wanted))
    out_tz = frame.schema["timestamp"].time_zone  # type: ignore[union-attr]
    first, last = frame["timestamp"].min(), frame["timestamp"].max()  # named when the dates leave nothing
    lo = parse_bound(o["start"], tz=out_tz, is_end=False)
    hi = parse_bound(o["end"], tz=out_tz, is_end=True)
    if lo is not None:
        frame = frame.filter(pl.col("timestamp").is_null() | (pl.col("timestamp") >= lo.to_pydatetime()))
    if hi is not None:
        frame = frame.filter(pl.col("timestamp").is_null() | (pl.col("timestamp") <= hi.to_pydatetime()))
    if frame.height < n_read:
        notes.append(f"filters (instruments, start, end) kept {frame.height} of {n_read} rows read")
    if frame.height == 0:
        span = f"the data runs from {fmt_time(first)} to {fmt_time(last)}" if first is not None else "no timestamps"
        raise DataError(f"{label}: no rows left after filters (instruments={wanted}, start={o['start']}, "
                        f"end={o['end']}; {span}); widen the date range or check the instrument names")
    return frame, notes


def load_panel_with_report(source: Source, **options: Unpack[LoadOptions]) -> tuple[pl.DataFrame, ValidationReport]:
    """Like ``load_panel`` but also return the ``ValidationReport`` (with the loader's notes)."""
    o = _complete(options, LoadOptions)
    frame, notes = read_panel(source, **{k: o[k] for k in ReadOptions.__optional_keys__})  # type: ignore[misc]
    label = str(source) if isinstance(source, (str, Path)) else "<DataFrame>"
    for note in notes:
        logger.info("%s: %s", label, note)
    if o["validate"]:
        return validate_panel(frame, policy=o["policy"], source=label, notes=notes, exclude=o["exclude"],
                              max_gap_bars=o["max_gap_bars"], jump_threshold=o["jump_threshold"], adjust=o["adjust"])
    panel = frame.sort(["instrument", "timestamp"], maintain_order=True)
    return panel, ValidationReport(source=label, policy=None, n_rows_in=frame.height, n_rows_out=panel.height,
                                   notes=list(notes), adjust=o["adjust"])


def load_panel(source: Source, **options: Unpack[LoadOptions]) -> pl.DataFrame:
    """Load market data into the standard panel (see the module docstring for its schema).

    source: a long-format CSV/TSV/Parquet/IPC file; a directory (or list) of per-instrument files
    (``AAPL.csv``, ``MSFT.parquet``: the instrument is the file stem unless the file has an
    instrument column); or a pandas/polars DataFrame (a DatetimeIndex, a MultiIndex and
    yfinance-style (field, ticker) column levels are understood).
    options: ``LoadOptions`` (reading: ``ReadOptions``; then validation with ``policy``).
    A file read as one instrument (no instrument column) that looks like several is refused: its
    distinct rows repeat timestamps, or an unrecognised identifier-like column tells them apart
    (see ``_identifier.py``). CSV separators are sniffed (``,`` ``;`` tab ``|``).
    A missing ``amount`` is volume x mean(open, high, low, close); a missing ``volume`` is 0 (both
    noted in the report and the log).
    """
    return load_panel_with_report(source, **options)[0]


# ----------------------------------------------------------------------------- views
def panel_to_wide(panel: pl.DataFrame, field: str | pl.Expr) -> pd.DataFrame:
    """One field of a standard panel as a wide pandas frame: index timestamp (sorted), columns
    instruments (sorted), float64; shape (n_timestamps, n_instruments); bars an instrument lacks are NaN.

    field: a panel field ("open" ... "amount"), or a polars expression over the panel's columns that
    is evaluated on each instrument's own bars in time order (``.over("instrument")`` is applied),
    e.g. ``pl.col("close") / pl.col("close").shift(5) - 1`` for 5-bar returns. This is the one
    place where the panel becomes a wide pandas frame. Raises DataError for a non-standard panel
    or repeated (instrument, timestamp) rows.
    """
    check_panel(panel, require_sorted=False)
    if panel.select(pl.struct("instrument", "timestamp").is_duplicated().any()).item():
        raise DataError("panel has duplicate (instrument, timestamp) rows; run validate_panel(panel, policy='drop')")
    if isinstance(field, pl.Expr):
        panel = panel.sort(["instrument", "timestamp"])
        values = field.over("instrument")
    elif field in FIELD_COLUMNS:
        values = pl.col(field)
    else:
        raise ValueError(f"field must be one of {list(FIELD_COLUMNS)} or a polars expression, got {field!r}")
    long = panel.select("instrument", "timestamp", values.cast(pl.Float64).alias("value"))
    wide = long.pivot(on="instrument", index="timestamp", values="value", sort_columns=True).sort("timestamp")
    frame = wide.to_pandas().set_index("timestamp")
    frame.columns.name = "instrument"
    instruments = sorted(panel["instrument"].unique().to_list())
    return frame.reindex(columns=instruments).astype(np.float64)


def data_fingerprint(panel: pl.DataFrame) -> str:
    """sha256 hex digest of the panel's content (row order does not matter; dtypes and tz do)."""
    check_panel(panel, require_sorted=False)
    data = panel.sort(["instrument", "timestamp"])
    ts = data["timestamp"]
    parts: list[Any] = ["kronos-quant-panel-v1", list(PANEL_COLUMNS), str(ts.dtype)]
    parts.append("\x00".join(data["instrument"].fill_null("<null>").to_list()))
    parts.append(ts.dt.epoch("us").fill_null(np.iinfo(np.int64).min).to_numpy())
    for name in FIELD_COLUMNS:
        parts.append(data[name].to_numpy().astype(np.float64))
    return stable_hash(*parts)
