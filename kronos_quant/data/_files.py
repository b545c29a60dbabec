"""Finding and reading data files: CSV/TSV (text encodings), Parquet and Arrow IPC (used by ``panel.py``).

Text files must be UTF-8 (a byte-order mark is fine) unless ``encoding`` names another codec
(``"gb18030"`` for Chinese Excel exports, ``"cp1252"`` for Western ones). Bytes that are not
valid UTF-8 are a DataError naming the file, the line and the fix -- never silently replaced,
which would garble a column name (``Tícker`` -> ``T�cker``) so that it is no longer recognised.
Knows nothing about column names beyond keeping instrument codes as text.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import polars as pl

from kronos_quant.data._columns import COLUMN_ALIASES, normalise_name
from kronos_quant.data._hints import option_hint
from kronos_quant.errors import DataError

__all__ = ["SUPPORTED_SUFFIXES", "Source", "list_files", "read_file"]

SUPPORTED_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".parquet", ".pq", ".feather", ".arrow", ".ipc")
_NULL_STRINGS = ["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "-", "--", "#N/A"]

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


def read_file(path: Path, *, label: str, columns: Mapping[str, str] | None = None,
              encoding: str | None = None) -> pl.DataFrame:
    """One file as a raw polars frame (columns as in the file; instrument codes as text)."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            sep = "\t" if suffix == ".tsv" else ","
            data = _utf8_bytes(path, encoding)
            header = pl.read_csv(data, separator=sep, n_rows=0).columns
            # instrument codes stay text: "000001" must not become the integer 1
            explicit = {src for src, dst in (columns or {}).items() if dst == "instrument"}
            text = {c: pl.Utf8 for c in header
                    if c in explicit or normalise_name(c) in COLUMN_ALIASES["instrument"]}
            return pl.read_csv(data, separator=sep, infer_schema_length=10_000, null_values=_NULL_STRINGS,
                               try_parse_dates=False, schema_overrides=text)
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
