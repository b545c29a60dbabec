"""Datasets bundled inside the package: real market data that works offline on a fresh install.

``load_builtin("sp500-2013-2017")`` returns the standard panel of a bundled dataset (validated
with ``policy="drop"`` unless told otherwise: bundled real data keeps its real defects, which
the data card lists). ``builtin_file(name)`` is the file itself (for ``kronos-quant data inspect
builtin:sp500-2013-2017``), ``builtin_card(name)`` its data card (origin, licence, known defects)
and ``BUILTIN_DATASETS`` the catalogue. Files are found with ``importlib.resources``, so they
work from a source checkout, an editable install and an installed wheel alike.

Knows nothing about models, strategies or backtests.
"""

from __future__ import annotations

import atexit
import contextlib
import difflib
import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

import polars as pl

from kronos_quant.data.panel import LoadOptions, load_panel_with_report
from kronos_quant.data.report import ValidationReport
from kronos_quant.errors import DataError

__all__ = ["BuiltinDataset", "BUILTIN_DATASETS", "BUILTIN_PREFIX", "builtin_dataset", "builtin_file", "builtin_card",
           "load_builtin", "load_builtin_with_report", "resolve_data_path"]

BUILTIN_PREFIX = "builtin:"
_PACKAGE_DIR = "builtin/datasets"


@dataclass(frozen=True)
class BuiltinDataset:
    """One bundled dataset. filename / card: files in ``kronos_quant/builtin/datasets/``; market: the
    ``kronos_quant.markets`` preset its calendar follows; sha256: of the file, checked by the tests."""

    name: str
    filename: str
    card: str
    market: str
    licence: str
    description: str
    sha256: str


BUILTIN_DATASETS: dict[str, BuiltinDataset] = {
    d.name: d
    for d in [
        BuiltinDataset(
            name="sp500-2013-2017", filename="sp500-2013-2017.parquet", card="sp500-2013-2017.md",
            market="us_equity", licence="CC0 1.0 (public domain)",
            description="daily OHLCV of 100 S&P 500 constituents (A .. CLX), 2013-02-08 .. 2017-12-29, split-adjusted (not for dividends)",
            sha256="2a7397c135e6b5d280fbb46c0d11a9098250d209e8081089f3f45bb536da54f4"),
    ]
}

_files = contextlib.ExitStack()  # resources extracted from a zipped install live until exit
atexit.register(_files.close)


def builtin_dataset(name: str) -> BuiltinDataset:
    """The catalogue entry of ``name`` (a ``builtin:`` prefix is allowed); DataError naming the known ones."""
    key = name.removeprefix(BUILTIN_PREFIX)
    if key not in BUILTIN_DATASETS:
        close = difflib.get_close_matches(key, list(BUILTIN_DATASETS), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise DataError(f"unknown built-in dataset {name!r}; {hint}known: {', '.join(BUILTIN_DATASETS)} "
                        "(strategy file: data.source: builtin, data.name: NAME)")
    return BUILTIN_DATASETS[key]


def _resource(filename: str) -> Path:
    res = importlib.resources.files("kronos_quant").joinpath(_PACKAGE_DIR, filename)
    if not res.is_file():
        raise DataError(f"the packaged file kronos_quant/{_PACKAGE_DIR}/{filename} is missing from this install; "
                        "reinstall kronos-quant (pip install --force-reinstall kronos-quant)")
    return _files.enter_context(importlib.resources.as_file(res))


def builtin_file(name: str) -> Path:
    """A filesystem path of the dataset's data file (valid until the interpreter exits)."""
    return _resource(builtin_dataset(name).filename)


def builtin_card(name: str) -> str:
    """The dataset's data card (Markdown): origin, licence, contents and known defects."""
    return _resource(builtin_dataset(name).card).read_text(encoding="utf-8")


def resolve_data_path(text: str | Path) -> Path:
    """``builtin:NAME`` -> the bundled file; anything else -> ``Path(text)`` unchanged."""
    s = str(text)
    return builtin_file(s) if s.startswith(BUILTIN_PREFIX) else Path(s)


def load_builtin_with_report(name: str, **options: Unpack[LoadOptions]) -> tuple[pl.DataFrame, ValidationReport]:
    """The standard panel of a bundled dataset and its ``ValidationReport``.

    options: as ``load_panel``; ``policy`` defaults to ``"drop"`` here (the data card lists what it
    drops: the S&P 500 file has one row without open/high/low and three rows whose close lies
    outside [low, high]).
    """
    ds = builtin_dataset(name)
    opts: dict[str, Any] = {"policy": "drop", **options}
    panel, report = load_panel_with_report(builtin_file(ds.name), **opts)
    report.source = BUILTIN_PREFIX + ds.name
    report.notes.append(f"built-in dataset {ds.name} ({ds.licence}); see its data card: "
                        f"kronos_quant.data.builtin_card({ds.name!r})")
    return panel, report


def load_builtin(name: str, **options: Unpack[LoadOptions]) -> pl.DataFrame:
    """The standard panel of a bundled dataset, e.g. ``load_builtin("sp500-2013-2017", start="2016-01-01")``."""
    return load_builtin_with_report(name, **options)[0]
