"""Finding and reading data files: CSV/TSV (text encodings), Parquet and Arrow IPC (used by ``panel.py``).

CSV/TSV files: the separator (``,`` ``;`` tab ``|``) is sniffed from the header line; ``;`` files
use decimal commas. Lines with more or fewer fields than the header are refused, naming the line.
Text files must be UTF-8 (a byte-order mark is fine) unless ``encoding`` names another codec
(``"gb18030"`` for Chinese Excel exports, ``"cp1252"`` for Western ones). Bytes that are not
valid UTF-8 are a DataError naming the file, the line and the fix -- never silently replaced,
which would garble a column name (``Tícker`` -> ``T�cker``) so that it is no longer recognised.
Knows nothing about column names beyond keeping instrument codes as text.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from kronos_quant.data._columns import COLUMN_ALIASES, normalise_name
from kronos_quant.data._hints import option_hint
from kronos_quant.errors import DataError

__all__ = ["SUPPORTED_SUFFIXES", "Source", "list_files", "read_file"]

SUPPORTED_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".parquet", ".pq", ".feather", ".arrow", ".ipc")
_NULL_STRINGS = ["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "-", "--", "#N/A"]
_SEPARATORS = ",;\t|"
_DECIMAL = r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?([eE][+-]?\d+)?$"  # 1.234,5 or 10,5 or 1,5e-05

Source = str | Path | Sequence[str | Path] | pd.DataFrame | pl.DataFrame


def _utf8_bytes(path: Path, encoding: str | None) -> bytes:
    """The file's text as UTF-8 bytes; a DataError that names the fix when it is not valid ``encoding``."""
    data = path.read_bytes()
    codec = encoding or "utf-8"
    try:
        codecs.lookup(codec)
    except LookupError:
        raise DataError(f"{path}: unknown text encoding {codec!r}; use a Python codec name such as 'utf-8', "
                        "'gb18030' or 'cp1252'") from None
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        where = "the header" if line == 1 else f"line {line}"
        hint = (f"re-save it as UTF-8, or name its encoding: {option_hint('encoding', 'gb18030')} for Chinese "
                f"Excel exports, encoding='cp1252' for Western ones" if encoding is None
                else "check the file's encoding and set encoding= (data.encoding) to it")
        raise DataError(f"{path}: not valid {codec} text (byte 0x{data[exc.start]:02x} in {where}); {hint}") from None
    return data if encoding is None else text.encode("utf-8")


def _separator(data: bytes, suffix: str) -> str:
    """The field separator, sniffed from the header line (``,`` ``;`` tab or ``|``); tab for ``.tsv``."""
    if suffix == ".tsv":
        return "\t"
    header = data.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    try:
        return csv.Sniffer().sniff(header, delimiters=_SEPARATORS).delimiter
    except csv.Error:  # one column, or nothing to tell
        return ","


def _ragged_line(data: bytes, sep: str, label: str) -> None:
    """A DataError naming the first line whose number of fields differs from the header's."""
    arr = np.frombuffer(data, dtype=np.uint8)
    ends = np.append(np.flatnonzero(arr == ord("\n")), len(arr))
    starts = np.concatenate(([0], ends[:-1] + 1))
    seps = np.flatnonzero(arr == ord(sep))
    per_line = np.searchsorted(seps, ends) - np.searchsorted(seps, starts)
    blank = (ends - starts) <= 1  # empty, or just "\r"
    odd = np.flatnonzero((per_line != per_line[0]) & ~blank)
    if not len(odd):
        return
    if b'"' not in data:
        line, n_fields = int(odd[0]) + 1, int(per_line[odd[0]]) + 1
    else:  # separators inside quotes: count fields properly
        rows = csv.reader(io.StringIO(data.decode("utf-8", errors="replace")), delimiter=sep)
        width = len(next(rows, []))
        bad = next(((rows.line_num, len(r)) for r in rows if r and len(r) != width), None)
        if bad is None:
            return
        line, n_fields = bad
    width = int(per_line[0]) + 1
    raise DataError(f"{label}: line {line} has {n_fields} fields but the header has {width} (fields separated "
                    f"by {sep!r}); fix or delete that line (a value containing {sep!r} must be quoted)")


def _decimal_commas(frame: pl.DataFrame, keep_text: set[str], notes: list[str]) -> pl.DataFrame:
    """``;``-separated files write decimal commas (``10,5``): text columns of such numbers become floats."""
    fixed = []
    for col in frame.columns:
        if col in keep_text or frame.schema[col] != pl.Utf8:
            continue
        text = frame[col].str.strip_chars()
        present = text.drop_nulls()
        if present.len() and present.str.contains(",", literal=True).any() and present.str.contains(_DECIMAL).all():
            number = text.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
            frame = frame.with_columns(number.cast(pl.Float64, strict=False).alias(col))
            fixed.append(col)
    if fixed:
        notes.append(f"';'-separated file: decimal commas read as decimal points in {fixed}")
    return frame


def read_file(path: Path, *, label: str, columns: Mapping[str, str] | None = None,
              encoding: str | None = None, notes: list[str] | None = None) -> pl.DataFrame:
    """One file as a raw polars frame (columns as in the file; instrument codes as text).

    CSV/TSV: the separator is sniffed from the header line (``,`` ``;`` tab ``|``; tab for ``.tsv``);
    in ``;``-separated files commas are decimal commas. A header that names a column twice, or a line
    with more or fewer fields than the header, is a DataError naming the file (and the line).
    ``notes`` gets what was done (without the label).
    """
    notes = [] if notes is None else notes
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            data = _utf8_bytes(path, encoding)
            sep = _separator(data, suffix)
            header = pl.read_csv(data, separator=sep, n_rows=0).columns
            twice = [c for c in header if re.fullmatch(r"(.+)_duplicated_\d+", c) and c.rsplit("_duplicated_", 1)[0]
                     in header]
            if twice:
                names = sorted({c.rsplit("_duplicated_", 1)[0] for c in twice})
                raise DataError(f"{label}: the header names column(s) {names} more than once; rename or delete "
                                "the extra column(s)")
            if sep not in (",", "\t"):
                notes.append(f"fields separated by {sep!r}")
            # instrument codes stay text: "000001" must not become the integer 1
            explicit = {src for src, dst in (columns or {}).items() if dst == "instrument"}
            text = {c for c in header if c in explicit or normalise_name(c) in COLUMN_ALIASES["instrument"]}
            try:
                frame = pl.read_csv(data, separator=sep, infer_schema_length=10_000, null_values=_NULL_STRINGS,
                                    try_parse_dates=False, schema_overrides=dict.fromkeys(text, pl.Utf8))
            except pl.exceptions.PolarsError:
                _ragged_line(data, sep, label)  # a line with too many fields, named in our words
                raise
            if frame.width and frame[frame.columns[-1]].null_count():  # short lines end in nulls
                _ragged_line(data, sep, label)
            return _decimal_commas(frame, text, notes) if sep == ";" else frame
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix in (".feather", ".arrow", ".ipc"):
            return pl.read_ipc(path)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{label}: cannot read {suffix} file: {exc}") from exc
    raise DataError(f"{label}: unsupported file type '{suffix}'; use one of {', '.join(SUPPORTED_SUFFIXES)}")


def list_files(source: Source) -> tuple[list[Path], bool]:
    """Files to read and whether they came from a directory or a list (one instrument per file)."""
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
    files = [Path(p).expanduser() for p in source]  # type: ignore[union-attr]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise DataError(f"no such file(s): {missing}")
    return files, True
