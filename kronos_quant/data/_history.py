"""Checks on a cleaned panel's histories: gaps and history breaks, jumps, short histories, idle days.

Used by ``validate.py`` after the row-level checks; every function takes a panel sorted by
(instrument, timestamp) with one row per bar, and reports, never changes it.

Expected bar grid: the union of all instruments' timestamps (the market's observed calendar,
so exchange holidays are not gaps); for intraday data also every session slot of each day with
any bar; and, for daily and intraday data, every bar of every trading weekday in a market-wide
run of more than ``OUTAGE_DAYS`` weekdays without any bar (no exchange closes that long, so that
is missing data, and a single-instrument panel's 380-day hole is found). A gap of an instrument
is a run of grid bars it lacks between two of its bars, measured in bars; a gap longer than
``max_gap_bars`` breaks its history into segments (``SegmentBreak``).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from kronos_quant.data.calendar import BarCalendar
from kronos_quant.data.report import MAX_EXAMPLES, SegmentBreak, Severity, ValidationIssue, fmt_time
from kronos_quant.schema import PRICE_FIELDS

__all__ = ["MAX_EXAMPLES", "OUTAGE_DAYS", "row_issues", "gap_issues", "history_issues"]

OUTAGE_DAYS = 10  # longest run of weekdays without any bar that still counts as an exchange holiday


def row_issues(df: pl.DataFrame, mask: pl.Series, *, check: str, action: str, detail: str = "",
               severity: Severity = "error", show_values: bool = False) -> list[ValidationIssue]:
    """One issue per instrument for the rows where ``mask`` is true (df sorted by instrument, timestamp)."""
    hit = df.filter(mask)
    out = []
    for (name,), grp in hit.group_by(["instrument"], maintain_order=True):
        stamps = tuple(grp["timestamp"].drop_nulls().unique(maintain_order=True).head(MAX_EXAMPLES).to_list())
        text = detail
        if show_values:
            first = grp.row(0, named=True)
            values = " ".join(f"{c[0]}={first[c]:g}" if first[c] is not None else f"{c[0]}=null"
                              for c in PRICE_FIELDS)
            text = f"{detail}; first: {values}" if detail else f"first: {values}"
        out.append(ValidationIssue(check, severity, name, grp.height, action, stamps, text))
    return out


def _local_us(ts: pl.Series) -> np.ndarray:
    if ts.dtype.time_zone is not None:  # type: ignore[union-attr]
        ts = ts.dt.replace_time_zone(None)
    return ts.to_numpy().astype("datetime64[us]")


def _expected_grid(stamps: np.ndarray, calendar: BarCalendar) -> np.ndarray:
    """The sorted expected bar grid (local wall-clock datetime64[us]); see the module docstring."""
    grid = np.unique(stamps)
    if calendar.kind not in ("daily", "intraday"):
        return grid
    days = np.unique(grid.astype("datetime64[D]"))
    trading = calendar.trading_days(grid[0], grid[-1]).values.astype("datetime64[D]")
    idle = ~np.isin(trading, days)
    edges = np.diff(np.r_[0, idle.astype(np.int8), 0])
    runs = zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))
    outage = np.concatenate([trading[a:b] for a, b in runs if b - a > OUTAGE_DAYS] or [trading[:0]])
    if calendar.kind == "daily" and not len(outage):
        return grid
    wanted = outage if calendar.kind == "daily" else np.union1d(days, outage)
    slots = calendar.grid(grid[0], grid[-1])
    slots = slots.tz_localize(None) if slots.tz is not None else slots
    slot_vals = slots.values.astype("datetime64[us]")
    return np.union1d(grid, slot_vals[np.isin(slot_vals.astype("datetime64[D]"), wanted)])


def gap_issues(panel: pl.DataFrame, calendar: BarCalendar, *,
               max_gap_bars: int) -> tuple[list[ValidationIssue], list[SegmentBreak]]:
    """Missing bars per instrument (warnings) and the gaps longer than ``max_gap_bars`` (breaks)."""
    stamps = _local_us(panel["timestamp"])
    grid = _expected_grid(stamps, calendar)
    names = panel["instrument"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, names[1:] != names[:-1], True])
    issues: list[ValidationIssue] = []
    breaks: list[SegmentBreak] = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        pos = np.searchsorted(grid, stamps[a:b])
        steps = np.diff(pos) - 1
        where = np.flatnonzero(steps > 0)
        if not len(where):
            continue
        examples: list[np.datetime64] = []
        for i in where:
            examples.extend(grid[pos[i] + 1: pos[i + 1]][: MAX_EXAMPLES - len(examples)])
            if len(examples) >= MAX_EXAMPLES:
                break
        long = np.flatnonzero(steps > max_gap_bars)
        if len(long):
            before = panel["timestamp"].gather(a + long).to_list()
            after = panel["timestamp"].gather(a + long + 1).to_list()
            breaks += [SegmentBreak(str(names[a]), s, p, int(steps[k])) for s, p, k in zip(after, before, long)]
        k = int(np.argmax(steps))
        detail = (f"{len(where)} gap(s), longest {int(steps[k])} bar(s) after "
                  f"{fmt_time(stamps[a + k].astype(dt.datetime))}")
        if len(long):
            detail += f"; {len(long)} longer than max_gap_bars={max_gap_bars} (history breaks)"
        issues.append(ValidationIssue("gaps", "warning", str(names[a]), int(steps[where].sum()), "reported",
                                      tuple(e.astype(dt.datetime) for e in examples), detail))
    return issues, breaks


def history_issues(panel: pl.DataFrame, calendar: BarCalendar, jump_threshold: float) -> list[ValidationIssue]:
    """short_history, suspicious_jump, zero_volume and non_trading_weekdays findings."""
    out: list[ValidationIssue] = []
    first, last = panel["timestamp"].min(), panel["timestamp"].max()
    spans = panel.group_by("instrument", maintain_order=True).agg(
        pl.len().alias("n"), pl.col("timestamp").min().alias("first"), pl.col("timestamp").max().alias("last"))
    n_max = int(spans["n"].max())  # type: ignore[arg-type]
    for row in spans.filter((pl.col("first") > first) | (pl.col("last") < last)).iter_rows(named=True):
        out.append(ValidationIssue(
            "short_history", "info", row["instrument"], row["n"], "reported", (),
            f"{row['n']} rows from {fmt_time(row['first'])} to {fmt_time(row['last'])} (longest history: {n_max} rows)"))
    log_ret = (pl.col("close") / pl.col("close").shift(1)).log().over("instrument")
    jumps = panel.with_columns(log_ret.alias("r"))
    out += row_issues(jumps, (jumps["r"].abs() > jump_threshold).fill_null(False), check="suspicious_jump",
                      action="reported", severity="warning",
                      detail=f"|log close return| > {jump_threshold:g}; an unadjusted split or a bad price?")
    out += row_issues(panel, (panel["volume"] == 0).fill_null(False), check="zero_volume", action="reported",
                      severity="info")
    if calendar.kind in ("daily", "intraday"):
        trading = calendar.trading_days(first, last)
        seen = np.unique(panel["timestamp"].dt.date().to_numpy().astype("datetime64[D]"))
        idle = trading.values.astype("datetime64[D]")[~np.isin(trading.values.astype("datetime64[D]"), seen)]
        if len(idle):
            out.append(ValidationIssue(
                "non_trading_weekdays", "info", None, len(idle), "reported",
                tuple(d.astype("datetime64[us]").astype(dt.datetime) for d in idle[:MAX_EXAMPLES]),
                "sessions of the exchange calendar without any bar (missing data; its holidays are excluded)"
                if calendar.holidays else "weekdays without any bar (exchange holidays or missing data)"))
    return out
