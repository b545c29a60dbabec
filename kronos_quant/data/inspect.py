"""Summaries of a panel for people: instruments, rows, date range, bar calendar, missing values.

This module owns ``inspect_panel`` (behind ``kronos-quant data inspect PATH [--market NAME]``). With
an ``exchange`` it also compares the data's trading days with that exchange's sessions, and with
``days_per_year`` it counts bars a year as the market does (243 x 48 for 5-minute A-shares). It
computes and returns data; it never prints. Knows nothing about validation policies or models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from kronos_quant.data.calendar import infer_frequency, periods_per_year
from kronos_quant.data.contract import check_panel
from kronos_quant.data.exchange import calendar_mismatch
from kronos_quant.data.panel import data_fingerprint
from kronos_quant.errors import DataError
from kronos_quant.schema import FIELDS

__all__ = ["PanelSummary", "inspect_panel"]


@dataclass(frozen=True)
class PanelSummary:
    """What a panel holds. ``per_instrument`` has one row per instrument: instrument, rows, first,
    last, missing (rows with any null field), zero_volume (bars with volume 0). exchange_check (with an
    exchange): exchange, compared_days, days_on_holidays and sessions_without_bars (ISO dates)."""

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
    exchange_check: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (timestamps as ISO strings)."""
        per = self.per_instrument.with_columns(pl.col("first", "last").cast(pl.Utf8))
        return {
            "n_instruments": self.n_instruments, "n_rows": self.n_rows,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "frequency": self.frequency, "calendar": self.calendar, "periods_per_year": self.periods_per_year,
            "timezone": self.timezone, "missing_values": dict(self.missing_values),
            "per_instrument": per.to_dicts(), "fingerprint": self.fingerprint, "exchange_check": self.exchange_check,
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
        ]
        x = self.exchange_check
        if x is not None:
            closed, missing = x["days_on_holidays"], x["sessions_without_bars"]
            lines.append(f"{x['exchange']} calendar: {x['compared_days']} trading days compared; {len(closed)} on "
                         f"{x['exchange']} holidays or weekends{_examples(closed)}; {len(missing)} {x['exchange']} "
                         f"sessions without any bar (missing data){_examples(missing)}")
        else:
            lines.append("calendar: inferred from the data (--market NAME compares it with an exchange's sessions)")
        lines.append("per instrument (rows, first, last):")
        for row in self.per_instrument.head(max_instruments).iter_rows(named=True):
            lines.append(f"  {row['instrument']}: {row['rows']}, {row['first']} .. {row['last']}"
                         + (f", {row['missing']} rows with missing values" if row["missing"] else ""))
        if self.n_instruments > max_instruments:
            lines.append(f"  ... {self.n_instruments - max_instruments} more")
        return "\n".join(lines)


def _examples(days: list[str], n: int = 3) -> str:
    return f" ({', '.join(days[:n])}{' ...' if len(days) > n else ''})" if days else ""


def inspect_panel(panel: pl.DataFrame, *, exchange: str | None = None, tz: str | None = None,
                  days_per_year: float | None = None) -> PanelSummary:
    """Summarise a standard panel (any row order).

    exchange: an exchange_calendars code (XNYS, XSHG) to compare the trading days with (local dates;
    aware timestamps in ``tz`` first). days_per_year: the market's trading days a year; bars a year
    are then days_per_year x bars per day (None: inferred from the weekdays, 252 for Mon-Fri).
    """
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
        periods_per_year=None if calendar is None else (
            days_per_year * calendar.bars_per_day if days_per_year else periods_per_year(calendar)),
        timezone=panel.schema["timestamp"].time_zone,  # type: ignore[union-attr]
        missing_values={c: int(panel[c].null_count()) for c in FIELDS},
        per_instrument=per,
        fingerprint=data_fingerprint(panel),
        exchange_check=None if exchange is None else _exchange_check(stamps, exchange, tz),
    )


def _exchange_check(stamps: pl.Series, exchange: str, tz: str | None) -> dict[str, Any]:
    mm = calendar_mismatch(stamps.to_pandas(), exchange, tz=tz)
    return {"exchange": exchange, "compared_days": mm.n_days,
            "days_on_holidays": [d.isoformat() for d in mm.closed_days],
            "sessions_without_bars": [d.isoformat() for d in mm.missing_sessions]}
