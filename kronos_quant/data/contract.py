"""The panel contract: its exact schema, an empty panel, and the check that a frame obeys it.

Panel: a polars DataFrame with exactly ``schema.PANEL_COLUMNS`` -- instrument (Utf8), timestamp
(Datetime, microseconds; naive, or aware in the market's time zone), open, high, low, close (price
units), volume (shares/lots), amount (currency) as Float64 -- sorted by (instrument, timestamp).
A validated panel also has one row per (instrument, timestamp), finite positive prices and
low <= open, close <= high (see ``validate.py``).

Both the loader (``panel.py``) and the validator (``validate.py``) import this module, and it
imports neither, so the two never import each other.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from kronos_quant.errors import DataError
from kronos_quant.schema import FIELDS, PANEL_COLUMNS

__all__ = ["PANEL_SCHEMA", "empty_panel", "check_panel"]

PANEL_SCHEMA: dict[str, pl.DataType] = {
    "instrument": pl.Utf8(),
    "timestamp": pl.Datetime("us"),
    **{name: pl.Float64() for name in FIELDS},
}


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
