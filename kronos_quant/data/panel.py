"""Load market data from files or frames into the one standard panel.

This module owns the panel's exact schema (``PANEL_SCHEMA``), reading long-format CSV/Parquet
files, directories of per-instrument files and in-memory pandas/polars frames, mapping their
column names (automatic aliases plus an explicit ``columns=`` mapping), dtype coercion, time
zones, instrument and date filters, wide views and content fingerprints. Cleaning rules live in
``validate.py``; column aliases and timestamp parsing in ``_columns.py``.

Panel: a polars DataFrame with exactly ``schema.PANEL_COLUMNS`` -- instrument (Utf8), timestamp
(Datetime, microseconds, naive unless a ``tz`` was requested), open, high, low, close (price
units), volume (shares/lots), amount (currency) as Float64 -- sorted by (instrument, timestamp).

Knows nothing about models, forecasts or backtests.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import polars as pl

from kronos_quant.data._columns import (
    COLUMN_ALIASES,
    FIELD_COLUMNS,
    frame_from_pandas,
    normalise_name,
    standardise_frame,
)
from kronos_quant.data.bounds import parse_bound
from kronos_quant.errors import DataError
from kronos_quant.schema import PANEL_COLUMNS
from kronos_quant.utils.hashing import stable_hash

if TYPE_CHECKING:
    from kronos_quant.data.validate import Policy, ValidationReport

__all__ = [
    "PANEL_SCHEMA",
    "SUPPORTED_SUFFIXES",
    "load_panel",
    "load_panel_with_report",
    "read_panel",
    "empty_panel",
    "check_panel",
    "panel_to_wide",
    "data_fingerprint",
]

logger = logging.getLogger(__name__)

PANEL_SCHEMA: dict[str, pl.DataType] = {
    "instrument": pl.Utf8(),
    "timestamp": pl.Datetime("us"),
    **{name: pl.Float64() for name in FIELD_COLUMNS},
}
SUPPORTED_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".parquet", ".pq", ".feather", ".arrow", ".ipc")
_NULL_STRINGS = ["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "-", "--", "#N/A"]

Source = str | Path | Sequence[str | Path] | pd.DataFrame | pl.DataFrame


def empty_panel(tz: str | None = None) -> pl.DataFrame:
    """A panel with no rows (the exact schema; ``tz`` sets the timestamp time zone)."""
    schema = dict(PANEL_SCHEMA)
    schema["timestamp"] = pl.Datetime("us", tz)
    return pl.DataFrame(schema=schema)


def check_panel(panel: Any, *, name: str = "panel", require_sorted: bool = True) -> pl.DataFrame:
    """Return ``panel`` if it is a standard panel, else raise DataError saying what differs."""
    if not isinstance(panel, pl.DataFrame):
        raise DataError(f"{name} must be a polars DataFrame (got {type(panel).__name__}); "
                        "build one with kronos_quant.data.load_panel")
    if tuple(panel.columns) != PANEL_COLUMNS:
        raise DataError(f"{name} columns are {panel.columns}, expected exactly {list(PANEL_COLUMNS)}; "
                        "build it with kronos_quant.data.load_panel")
    for col, dtype in PANEL_SCHEMA.items():
        got = panel.schema[col]
        ok = isinstance(got, pl.Datetime) and got.time_unit == "us" if col == "timestamp" else got == dtype
        if not ok:
            raise DataError(f"{name} column '{col}' has dtype {got}, expected {dtype}; "
                            "build it with kronos_quant.data.load_panel")
    if require_sorted and panel.height > 1:
        unsorted = panel.select(
            ((pl.col("instrument") < pl.col("instrument").shift(1))
             | ((pl.col("instrument") == pl.col("instrument").shift(1))
                & (pl.col("timestamp") < pl.col("timestamp").shift(1)))).any()
        ).item()
        if unsorted:
            raise DataError(f"{name} is not sorted by (instrument, timestamp); call .sort(['instrument', 'timestamp'])")
    return panel


# ----------------------------------------------------------------------------- reading
def _read_file(path: Path, *, label: str, columns: Mapping[str, str] | None = None) -> pl.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            sep = "\t" if suffix == ".tsv" else ","
            header = pl.read_csv(path, separator=sep, n_rows=0).columns
            # instrument codes stay text: "000001" must not become the integer 1
            explicit = {src for src, dst in (columns or {}).items() if dst == "instrument"}
            text = {c: pl.Utf8 for c in header
                    if c in explicit or normalise_name(c) in COLUMN_ALIASES["instrument"]}
            return pl.read_csv(path, separator=sep, infer_schema_length=10_000, null_values=_NULL_STRINGS,
                               try_parse_dates=False, schema_overrides=text)
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix in (".feather", ".arrow", ".ipc"):
            return pl.read_ipc(path)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise DataError(f"{label}: cannot read {suffix} file: {exc}") from exc
    raise DataError(f"{label}: unsupported file type '{suffix}'; use one of {', '.join(SUPPORTED_SUFFIXES)}")


def _stem(path: Path) -> str:
    return path.stem


def _list_files(source: Source) -> tuple[list[Path], bool]:
    """Files to read and whether they came from a directory (one instrument per file)."""
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir()
                           if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED_SUFFIXES)
            if not files:
                raise DataError(f"{path}: directory has no data files ({', '.join(SUPPORTED_SUFFIXES)}); "
                                "put one file per instrument in it, e.g. AAPL.csv")
            return files, True
        if not path.exists():
            raise DataError(f"{path}: no such file or directory; check the path (relative paths start at "
                            f"{Path.cwd()})")
        return [path], False
    files = [Path(p).expanduser() for p in source]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise DataError(f"no such file(s): {missing}")
    return files, True


def read_panel(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    instruments: Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    tz: str | None = None,
    source_tz: str | None = None,
    instrument: str | None = None,
    timestamp_format: str | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """Read ``source`` into panel columns and dtypes WITHOUT validating or sorting it.

    Rows keep their file order (so validation can see out-of-order files). Returns the frame and
    notes on what the loader did (column mapping, derived columns, filters). See ``load_panel``.
    """
    notes: list[str] = []
    wanted = None if instruments is None else [str(i) for i in instruments]
    frames: list[pl.DataFrame] = []
    if isinstance(source, (pd.DataFrame, pl.DataFrame)):
        label = "<DataFrame>"
        raw = frame_from_pandas(source, label=label) if isinstance(source, pd.DataFrame) else source
        frames.append(standardise_frame(raw, label=label, columns=columns, instrument=instrument, tz=tz,
                                        source_tz=source_tz, timestamp_format=timestamp_format, notes=notes))
    else:
        files, per_instrument = _list_files(source)
        label = str(source) if isinstance(source, (str, Path)) else f"{len(files)} files"
        if per_instrument and wanted is not None:
            stems = {_stem(p) for p in files}
            # files named after instruments can be skipped before reading them
            if set(wanted) <= stems:
                files = [p for p in files if _stem(p) in set(wanted)]
        file_notes: dict[str, list[str]] = {}
        for path in files:
            default_name = _stem(path) if per_instrument or instrument is None else instrument
            raw = _read_file(path, label=str(path), columns=columns)
            these: list[str] = []
            frames.append(standardise_frame(
                raw, label=str(path), columns=columns, instrument=default_name, tz=tz, source_tz=source_tz,
                timestamp_format=timestamp_format, notes=these, instrument_from_stem=instrument is None))
            for note in these:
                file_notes.setdefault(note.removeprefix(f"{path}: "), []).append(path.name)
        if per_instrument:
            notes.append(f"read {len(files)} files from {label}")
        for message, names in file_notes.items():
            where = names[0] if len(names) == 1 else f"{len(names)} files, e.g. {names[0]}"
            notes.append(f"{message} ({where})" if per_instrument else f"{label}: {message}")
    frame = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
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
    lo = parse_bound(start, tz=out_tz, is_end=False)
    hi = parse_bound(end, tz=out_tz, is_end=True)
    if lo is not None:
        frame = frame.filter(pl.col("timestamp").is_null() | (pl.col("timestamp") >= lo.to_pydatetime()))
    if hi is not None:
        frame = frame.filter(pl.col("timestamp").is_null() | (pl.col("timestamp") <= hi.to_pydatetime()))
    if frame.height < n_read:
        notes.append(f"filters kept {frame.height} of {n_read} rows")
    if frame.height == 0:
        raise DataError(f"{label}: no rows left after filters (instruments={wanted}, start={start}, end={end}); "
                        "widen the date range or check the instrument names")
    return frame, notes


def load_panel_with_report(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    instruments: Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    tz: str | None = None,
    source_tz: str | None = None,
    instrument: str | None = None,
    timestamp_format: str | None = None,
    validate: bool = True,
    policy: Policy = "raise",
) -> tuple[pl.DataFrame, ValidationReport]:
    """Like ``load_panel`` but also return the ``ValidationReport`` (with the loader's notes)."""
    from kronos_quant.data.validate import ValidationReport, validate_panel

    frame, notes = read_panel(source, columns=columns, instruments=instruments, start=start, end=end, tz=tz,
                              source_tz=source_tz, instrument=instrument, timestamp_format=timestamp_format)
    label = source if isinstance(source, (str, Path)) else None
    if validate:
        panel, report = validate_panel(frame, policy=policy, source=None if label is None else str(label),
                                       notes=notes)
    else:
        panel = frame.sort(["instrument", "timestamp"], maintain_order=True)
        report = ValidationReport(source=None if label is None else str(label), policy=None,
                                  n_rows_in=frame.height, n_rows_out=panel.height, notes=list(notes))
    for note in notes:
        logger.info("%s: %s", label or "<DataFrame>", note)
    return panel, report


def load_panel(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    instruments: Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    tz: str | None = None,
    source_tz: str | None = None,
    instrument: str | None = None,
    timestamp_format: str | None = None,
    validate: bool = True,
    policy: Policy = "raise",
) -> pl.DataFrame:
    """Load market data into the standard panel (see the module docstring for its schema).

    source: a long-format CSV/TSV/Parquet/IPC file; a directory (or list) of per-instrument files
    (``AAPL.csv``, ``MSFT.parquet``: the instrument is the file stem unless the file has an
    instrument column); or a pandas/polars DataFrame (a DatetimeIndex, a MultiIndex and
    yfinance-style (field, ticker) column levels are understood).
    columns: explicit mapping ``{source name: panel name}``, applied before the automatic aliases
    (case-insensitive ``Date``/``Datetime``/``timestamps``/``time``, ``ticker``/``symbol``/``code``,
    ``Adj Close`` when there is no ``Close``, ``vol``, ``amt``/``turnover`` ...).
    instruments, start, end: filters (inclusive; a date-only ``end`` includes the whole day).
    tz: output time zone; None keeps naive wall-clock time (aware inputs keep their own local time).
    source_tz: zone of naive input timestamps when ``tz`` is set (default: ``tz`` itself).
    instrument: name of a single-instrument file/frame without an instrument column (default for a
    file: its stem). timestamp_format: strftime format for string timestamps (default: inferred,
    month-first for ambiguous ``01/02/2024``).
    A missing ``amount`` is volume x mean(open, high, low, close); a missing ``volume`` is 0 (both
    noted in the report and the log).
    validate, policy: run ``validate_panel`` with ``policy`` ("raise" | "drop" | "fill").
    """
    panel, _ = load_panel_with_report(
        source, columns=columns, instruments=instruments, start=start, end=end, tz=tz, source_tz=source_tz,
        instrument=instrument, timestamp_format=timestamp_format, validate=validate, policy=policy)
    return panel


# ----------------------------------------------------------------------------- views
def panel_to_wide(panel: pl.DataFrame, field: str) -> pd.DataFrame:
    """One field as a wide pandas frame: index timestamp (sorted), columns instruments (sorted).

    Shape (n_timestamps, n_instruments); bars an instrument lacks are NaN.
    """
    if field not in FIELD_COLUMNS:
        raise ValueError(f"field must be one of {list(FIELD_COLUMNS)}, got {field!r}")
    check_panel(panel, require_sorted=False)
    if panel.select(pl.struct("instrument", "timestamp").is_duplicated().any()).item():
        raise DataError("panel has duplicate (instrument, timestamp) rows; run validate_panel(panel, policy='drop')")
    wide = panel.pivot(on="instrument", index="timestamp", values=field, sort_columns=True).sort("timestamp")
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
