"""Spotting an instrument identifier that the alias table did not recognise (used by ``_columns.py``).

A file without a recognised instrument column is read as one instrument (named after the file).
When it really holds several instruments under an unrecognised identifier column (``PERMNO``,
``Symbol Code``), reading it as one instrument silently splices their prices into one series.
Four signs, in order of strength, are checked on the file's distinct rows:

1. many repeated timestamps (more than 5% of the distinct rows): a long file -> DataError;
2. a few repeated timestamps, all told apart by one identifier-like column -> DataError;
3. an identifier-like column at whose value changes (in time order) the close jumps by more than the
   validation jump threshold, at half of the changes or more: prices of different instruments would
   be spliced into one series -> DataError (A in 2013-2014 at $40, B in 2015-2016 at $120; or A and B
   interleaved at different times of day);
4. an identifier-like column whose values cover separate date ranges without such jumps: a warning and
   a report note (the column may be harmless, e.g. an exchange code that changed once).

Identifier-like: a text or integer column that is mapped to nothing, is not named like a panel
column, has at most 5% nulls and at least two values that each fill two rows or more, is not a
flag (0/1, Y/N, true/false) and is not derived from the date (a year, ``2024-01``, ``20240102``).
Every message names the column, the ``data.columns`` mapping that fixes a multi-instrument file,
and ``instrument='NAME'`` (Python) or deleting the column for a file that is one instrument.
Knows nothing about files, other panel columns or validation.
"""

from __future__ import annotations

import logging
import math

import polars as pl

from kronos_quant.data._hints import columns_hint
from kronos_quant.data.report import fmt_time
from kronos_quant.data.validate import DEFAULT_JUMP_THRESHOLD
from kronos_quant.errors import DataError

__all__ = ["check_identifier", "guess_identifier"]

logger = logging.getLogger(__name__)

_LONG_FILE_SHARE = 0.05  # repeated timestamps among the distinct rows above which a file is a long file
_MAX_NULL_SHARE = 0.05
_FLAGS = {"0", "1", "true", "false", "t", "f", "y", "n", "yes", "no"}
_TS = "__ts__"


def _text_or_integer(distinct: pl.DataFrame, raw_columns: list[str], skip: set[str]) -> list[str]:
    """The file's text and integer columns outside ``skip`` (what an identifier column can be)."""
    return [c for c in raw_columns if c not in skip and c in distinct.columns
            and (distinct.schema[c] == pl.Utf8 or distinct.schema[c].is_integer())]


def _candidates(distinct: pl.DataFrame, raw_columns: list[str], skip: set[str]) -> list[str]:
    """Unmapped text/integer columns with two or more values of two or more rows each, not flags or dates."""
    out = []
    n = distinct.height
    year = distinct[_TS].dt.year().cast(pl.Utf8)
    for col in _text_or_integer(distinct, raw_columns, skip):
        values = distinct[col].cast(pl.Utf8).str.strip_chars()
        if values.null_count() > _MAX_NULL_SHARE * n:
            continue
        counts = values.drop_nulls().value_counts()
        if counts.height < 2 or int(counts["count"].min()) < 2:  # type: ignore[arg-type]
            continue
        if set(counts[col].str.to_lowercase().to_list()) <= _FLAGS:
            continue
        dated = values.is_not_null() & year.is_not_null()
        if dated.any() and values.filter(dated).str.starts_with(year.filter(dated)).all():
            continue  # a year, month or date column
        out.append(col)
    return out


def _distinct(raw: pl.DataFrame, ts: pl.Series) -> pl.DataFrame:
    frame = raw.with_columns(ts.alias(_TS))
    try:
        return frame.unique(maintain_order=True)
    except pl.exceptions.PolarsError:  # unhashable column types: count every row
        return frame


def _pairs(distinct: pl.DataFrame, col: str) -> int:
    return int(distinct.select(pl.struct(col, _TS).n_unique()).item())


def _best(distinct: pl.DataFrame, candidates: list[str], n_stamps: int) -> str | None:
    """The candidate that tells most repeated timestamps apart (fewest values on a tie)."""
    best, best_key = None, None
    for col in candidates:
        key = (_pairs(distinct, col), -distinct[col].n_unique())
        if key[0] > n_stamps and (best_key is None or key > best_key):
            best, best_key = col, key
    return best


def _spans(distinct: pl.DataFrame, col: str) -> pl.DataFrame:
    """Per value of ``col``: its first and last timestamp and number of rows, earliest first."""
    rows = distinct.filter(pl.col(col).is_not_null() & pl.col(_TS).is_not_null())
    return rows.group_by(col).agg(pl.col(_TS).min().alias("first"), pl.col(_TS).max().alias("last"),
                                  pl.len()).sort("first", col)


def _disjoint(spans: pl.DataFrame) -> bool:
    """Whether the values' date ranges do not overlap (each value one block of time)."""
    return spans.height >= 2 and bool((spans["first"].slice(1) > spans["last"].slice(0, spans.height - 1)).all())


def _splices(distinct: pl.DataFrame, col: str, close: str | None) -> tuple[int, int, str]:
    """In time order: how often ``col`` changes value, at how many of those changes the close jumps
    (|log return| > the validation jump threshold), and an example of such a change."""
    if close is None:
        return 0, 0, ""
    rows = (distinct.filter(pl.col(col).is_not_null() & pl.col(_TS).is_not_null())
            .select(pl.col(col).cast(pl.Utf8).alias("value"), _TS, pl.col(close).cast(pl.Float64, strict=False)
                    .alias("close")).sort(_TS, "value"))
    steps = rows.with_columns(pl.col("value").shift(1).alias("before"),
                              (pl.col("close") / pl.col("close").shift(1)).log().abs().alias("jump"))
    changes = steps.filter(pl.col("before").is_not_null() & (pl.col("value") != pl.col("before")))
    jumps = changes.filter(pl.col("jump").is_finite() & (pl.col("jump") > DEFAULT_JUMP_THRESHOLD))
    example = ""
    if jumps.height:
        before, value, at = jumps.select("before", "value", _TS).row(0)
        example = f"{before} -> {value} at {fmt_time(at)}"
    return changes.height, jumps.height, example


def _fix(col: str, name: str | None, *, long_file: bool = False) -> str:
    one = f"instrument={name!r}" if name else "instrument='NAME'"
    then = "and remove the duplicate rows" if long_file else f"(Python API) or delete column '{col}' from the file"
    return (f"If the file holds several instruments, map the identifier column: {columns_hint(col, 'instrument')}. "
            f"If it holds one instrument, pass {one} {then}")


def _describe(spans: pl.DataFrame, col: str) -> str:
    shown = [f"{v} ({a:%Y-%m-%d} to {b:%Y-%m-%d}, {n} rows)"
             for v, a, b, n in spans.select(col, "first", "last", "len").head(4).iter_rows()]
    return ", ".join(shown) + (f" and {spans.height - 4} more" if spans.height > 4 else "")


def check_identifier(raw: pl.DataFrame, ts: pl.Series, *, label: str, raw_columns: list[str], skip: set[str],
                     close: str | None, name: str | None, notes: list[str]) -> None:
    """Refuse (or warn about) a file read as one instrument that looks like several (see the module docstring).

    raw: the file's columns; ts: its parsed timestamps; skip: columns that are mapped or named like
    panel columns; close: the source column of close prices; name: the instrument name it would get.
    """
    distinct = _distinct(raw, ts)
    n = distinct.height
    n_stamps = distinct[_TS].n_unique()
    repeats = n - n_stamps
    candidates = _candidates(distinct, raw_columns, skip)
    if repeats >= 2 and repeats > _LONG_FILE_SHARE * n:
        best = (_best(distinct, candidates, n_stamps)
                or _best(distinct, _text_or_integer(distinct, raw_columns, skip), n_stamps))
        raise DataError(
            f"{label}: {repeats} of {n} distinct rows repeat the timestamp of another row, but no column is "
            f"recognised as the instrument identifier (columns found: {raw_columns}). "
            + _fix(best or "YourColumn", name, long_file=True))
    warn = None
    for col in candidates:
        if repeats and _pairs(distinct, col) == n:  # every repeated timestamp is told apart by this column
            raise DataError(
                f"{label}: column '{col}' looks like an instrument identifier that is not recognised: the "
                f"{repeats} repeated timestamp(s) among {n} distinct rows all belong to different '{col}' values "
                f"({distinct[col].n_unique()} values), so the file is not one instrument (columns found: "
                f"{raw_columns}). " + _fix(col, name))
        spans = _spans(distinct, col)
        n_changes, n_jumps, example = _splices(distinct, col, close)
        if n_changes and n_jumps >= 0.5 * n_changes:
            raise DataError(
                f"{label}: column '{col}' looks like an instrument identifier that is not recognised: its values "
                f"are {_describe(spans, col)}, and in time order the close jumps (by a factor over "
                f"{math.exp(DEFAULT_JUMP_THRESHOLD):.1f}) at {n_jumps} of the {n_changes} places where '{col}' changes "
                f"value (e.g. {example}): read as one instrument, their prices would be spliced into one series "
                f"(columns found: {raw_columns}). " + _fix(col, name))
        if _disjoint(spans):
            warn = warn or (f"column '{col}' looks like an instrument identifier that is not recognised: its values "
                            f"cover separate date ranges, {_describe(spans, col)}; the file is read as one "
                            f"instrument. {_fix(col, name)}")
    if warn:
        logger.warning("%s: %s", label, warn)
        notes.append(warn)


def guess_identifier(raw: pl.DataFrame, ts: pl.Series, *, raw_columns: list[str], skip: set[str]) -> str | None:
    """The column most likely to be an unrecognised instrument identifier (for error hints), or None."""
    distinct = _distinct(raw, ts)
    candidates = _candidates(distinct, raw_columns, skip)
    return _best(distinct, candidates, distinct[_TS].n_unique()) or (candidates[0] if candidates else None)
