"""Summaries of a panel for people: instruments, rows, date range, bar calendar, missing values.

This module owns ``inspect_panel`` (behind ``kronos-quant data inspect PATH``). It computes and
returns data; it never prints. Knows nothing about validation policies or models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from kronos_quant.data.calendar import infer_frequency, periods_per_year
from kronos_quant.data.contract import check_panel
from kronos_quant.data.panel import data_fingerprint
from kronos_quant.errors import DataError
from kronos_quant.schema import FIELDS

__all__ = ["PanelSummary", "inspect_panel"]


@dataclass(frozen=True)
class PanelSummary:
    """What a panel holds. ``per_instrument`` has one row per instrument: instrument, rows, first,
    last, missing (rows with any null field), zero_volume (bars with volume 0)."""

    n_instruments: int
    n_rows: int
    start: Any
    end: Any
    frequency: str | None
    calendar: dict[str, Any] | None
    periods_per_year: float | None
    timezone: str | None
    missing_values: dict[str, int]
    per_instrument: pl.DataFrame
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (timestamps as ISO strings)."""
        per = self.per_instrument.with_columns(pl.col("first", "last").cast(pl.Utf8))
        return {
            "n_instruments": self.n_instruments, "n_rows": self.n_rows,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "frequency": self.frequency, "calendar": self.calendar, "periods_per_year": self.periods_per_year,
            "timezone": self.timezone, "missing_values": dict(self.missing_values),
            "per_instrument": per.to_dicts(), "fingerprint": self.fingerprint,
        }

    def summary(self, *, max_instruments: int = 20) -> str:
        """Multi-line human-readable text."""
        lines = [
            f"{self.n_rows} rows, {self.n_instruments} instruments, {self.start} .. {self.end}"
            + (f" ({self.timezone})" if self.timezone else ""),
            f"frequency: {self.frequency or 'unknown'}"
            + (f"; {self.periods_per_year:g} bars/year" if self.periods_per_year else ""),
            "missing values: " + (", ".join(f"{k}={v}" for k, v in self.missing_values.items() if v) or "none"),
            f"fingerprint: {self.fingerprint[:16]}",
            "per instrument (rows, first, last):",
        ]
        for row in self.per_instrument.head(max_instruments).iter_rows(named=True):
            lines.append(f"  {row['instrument']}: {row['rows']}, {row['first']} .. {row['last']}"
                         + (f", {row['missing']} rows with missing values" if row["missing"] else ""))
        if self.n_instruments > max_instruments:
            lines.append(f"  ... {self.n_instruments - max_instruments} more")
        return "\n".join(lines)


def inspect_panel(panel: pl.DataFrame) -> PanelSummary:
    """Summarise a standard panel (any row order)."""
    check_panel(panel, require_sorted=False)
    per = (
        panel.group_by("instrument")
        .agg(
            pl.len().alias("rows"),
            pl.col("timestamp").min().alias("first"),
            pl.col("timestamp").max().alias("last"),
            pl.any_horizontal([pl.col(c).is_null() for c in FIELDS]).sum().alias("missing"),
            (pl.col("volume") == 0).sum().alias("zero_volume"),
        )
        .sort("instrument")
        .with_columns(pl.col("rows", "missing", "zero_volume").cast(pl.Int64))
    )
    stamps = panel["timestamp"].drop_nulls().unique()
    calendar = None
    if stamps.len() >= 2:
        try:
            calendar = infer_frequency(stamps)
        except DataError:
            calendar = None
    return PanelSummary(
        n_instruments=per.height,
        n_rows=panel.height,
        start=panel["timestamp"].min(),
        end=panel["timestamp"].max(),
        frequency=None if calendar is None else calendar.describe(),
        calendar=None if calendar is None else calendar.to_dict(),
        periods_per_year=None if calendar is None else periods_per_year(calendar),
        timezone=panel.schema["timestamp"].time_zone,  # type: ignore[union-attr]
        missing_values={c: int(panel[c].null_count()) for c in FIELDS},
        per_instrument=per,
        fingerprint=data_fingerprint(panel),
    )
