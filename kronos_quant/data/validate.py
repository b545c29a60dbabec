"""Validate a panel and apply a cleaning policy; report every defect found.

This module owns the data-quality checks, the policies that act on them and the
``ValidationReport``. Checks (severity; action under raise / drop / fill):

=====================  ========  ============================================================
check                  severity  action
=====================  ========  ============================================================
missing_key            error     null instrument or timestamp: raise / drop / drop
duplicate_timestamp    error     repeated (instrument, timestamp): raise / keep last / keep last
missing_values         error     null field: raise / drop / fill (close forward-filled per
                                 instrument; open/high/low from the bar's close; volume
                                 forward-filled, else 0; amount = volume x typical price;
                                 rows with no close to carry forward are dropped)
non_positive_price     error     open/high/low/close <= 0: raise / drop / drop
negative_volume        error     volume or amount < 0: raise / drop / drop
high_below_low         error     raise / drop / fill (high, low := max, min of o, h, l, c)
close_outside_range    error     close not in [low, high]: raise / drop / fill (widen high/low)
open_outside_range     error     open not in [low, high]: raise / drop / fill (widen high/low)
unsorted_timestamps    warning   timestamps decrease in file order: sorted under every policy
gaps                   warning   bars missing from the expected grid: reported only
suspicious_jump        warning   |log close return| > jump_threshold (splits?): reported only
short_history          info      instrument starts after / ends before the panel: reported
zero_volume            info      bars with volume 0: reported
non_trading_weekdays   info      trading weekdays with no bar at all (holidays?): reported
=====================  ========  ============================================================

Gaps are never "fixed" by inventing bars: made-up flat bars distort returns, volatility and the
model's inputs. The expected grid is the union of all instruments' timestamps (the market's
observed calendar, so holidays are not gaps), plus, for intraday data, every session slot of
each observed trading day, within each instrument's own first..last bar.

Knows nothing about file formats (see ``panel.py``) or models.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from kronos_quant.data.calendar import BarCalendar, infer_frequency
from kronos_quant.data.panel import PANEL_SCHEMA, check_panel
from kronos_quant.errors import DataError
from kronos_quant.schema import PANEL_COLUMNS, PRICE_FIELDS

__all__ = ["Policy", "POLICIES", "ValidationIssue", "ValidationReport", "PanelValidationError", "validate_panel"]

logger = logging.getLogger(__name__)

Policy = Literal["raise", "drop", "fill"]
Severity = Literal["error", "warning", "info"]
POLICIES: tuple[str, ...] = ("raise", "drop", "fill")
MAX_EXAMPLES = 5
_FIELDS = [c for c in PANEL_COLUMNS if c not in ("instrument", "timestamp")]


@dataclass(frozen=True)
class ValidationIssue:
    """One check's finding for one instrument (``instrument`` None: the whole panel)."""

    check: str
    severity: Severity
    instrument: str | None
    count: int
    action: str
    timestamps: tuple[dt.datetime, ...] = ()  # up to MAX_EXAMPLES examples, earliest first
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["timestamps"] = [t.isoformat() for t in self.timestamps]
        return out

    def line(self) -> str:
        when = ", ".join(_fmt(t) for t in self.timestamps)
        more = " ..." if self.count > len(self.timestamps) and self.timestamps else ""
        parts = [f"{self.check}: {self.instrument or '(panel)'}: {self.count}"]
        if when:
            parts.append(f"at {when}{more}")
        if self.detail:
            parts.append(self.detail)
        return " | ".join(parts) + f" -> {self.action}"


@dataclass
class ValidationReport:
    """All issues of one validation run, plus the loader's notes."""

    source: str | None
    policy: Policy | None
    n_rows_in: int
    n_rows_out: int
    issues: list[ValidationIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_instruments: int = 0
    calendar: str | None = None

    @property
    def errors(self) -> list[ValidationIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def ok(self) -> bool:
        """True when no error-severity issue was found (warnings and info do not count)."""
        return not self.errors

    def by_check(self, check: str) -> list[ValidationIssue]:
        return [i for i in self.issues if i.check == check]

    def instruments_with(self, check: str) -> list[str]:
        return sorted({i.instrument for i in self.by_check(check) if i.instrument is not None})

    def summary(self, *, max_lines: int = 60) -> str:
        """Human-readable multi-line summary (errors first)."""
        head = (f"validation of {self.source or 'panel'} (policy={self.policy!r}): {self.n_rows_in} rows in, "
                f"{self.n_rows_out} out, {self.n_instruments} instruments")
        lines = [head] + ([f"calendar: {self.calendar}"] if self.calendar else [])
        for severity in ("error", "warning", "info"):
            group = [i for i in self.issues if i.severity == severity]
            if group:
                lines.append(f"{severity}s ({len(group)}):")
                lines += [f"  {i.line()}" for i in group]
        if not self.issues:
            lines.append("no issues found")
        lines += [f"note: {n}" for n in self.notes]
        if len(lines) > max_lines:
            lines = lines[: max_lines - 1] + [f"... {len(lines) - max_lines + 1} more lines (see .to_frame())"]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"source": self.source, "policy": self.policy, "n_rows_in": self.n_rows_in,
                "n_rows_out": self.n_rows_out, "n_instruments": self.n_instruments, "calendar": self.calendar,
                "ok": self.ok, "issues": [i.to_dict() for i in self.issues], "notes": list(self.notes)}

    def to_frame(self) -> pl.DataFrame:
        """One row per issue: check, severity, instrument, count, action, detail, timestamps (str)."""
        rows = [{**i.to_dict(), "timestamps": ", ".join(t.isoformat() for t in i.timestamps)} for i in self.issues]
        schema = {"check": pl.Utf8, "severity": pl.Utf8, "instrument": pl.Utf8, "count": pl.Int64,
                  "action": pl.Utf8, "timestamps": pl.Utf8, "detail": pl.Utf8}
        return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


class PanelValidationError(DataError):
    """Validation under policy "raise" found errors; ``.report`` holds every issue."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        lines = [i.line() for i in report.errors]
        shown = lines[:20] + ([f"... and {len(lines) - 20} more"] if len(lines) > 20 else [])
        super().__init__(
            f"{report.source or 'panel'}: {len(lines)} validation error(s) (policy='raise'):\n  "
            + "\n  ".join(shown)
            + "\npass policy='drop' to drop the offending rows or policy='fill' to repair what can be repaired"
        )


def _fmt(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d") if (t.hour, t.minute, t.second, t.microsecond) == (0, 0, 0, 0) else t.isoformat(" ")


def _row_issues(df: pl.DataFrame, mask: pl.Series, *, check: str, action: str, detail: str = "",
                severity: Severity = "error", show_values: bool = False) -> list[ValidationIssue]:
    """One issue per instrument for the rows where ``mask`` is true (df sorted by instrument, timestamp)."""
    hit = df.filter(mask)
    out = []
    for (name,), grp in hit.group_by(["instrument"], maintain_order=True):
        stamps = tuple(grp["timestamp"].head(MAX_EXAMPLES).to_list())
        text = detail
        if show_values:
            first = grp.row(0, named=True)
            values = " ".join(f"{c[0]}={first[c]:g}" if first[c] is not None else f"{c[0]}=null"
                              for c in PRICE_FIELDS)
            text = f"{detail}; first: {values}" if detail else f"first: {values}"
        out.append(ValidationIssue(check, severity, name, grp.height, action, stamps, text))
    return out


def _gap_issues(panel: pl.DataFrame, calendar: BarCalendar) -> list[ValidationIssue]:
    """Missing bars per instrument relative to the union grid (plus intraday session slots)."""
    local = panel["timestamp"]
    if local.dtype.time_zone is not None:  # type: ignore[union-attr]
        local = local.dt.replace_time_zone(None)
    stamps = local.to_numpy().astype("datetime64[us]")
    grid = np.unique(stamps)
    if calendar.kind == "intraday":
        slots = calendar.grid(grid[0], grid[-1])
        slots = slots.tz_localize(None) if slots.tz is not None else slots
        days = np.unique(grid.astype("datetime64[D]"))
        slot_vals = slots.values.astype("datetime64[us]")
        slot_vals = slot_vals[np.isin(slot_vals.astype("datetime64[D]"), days)]
        grid = np.union1d(grid, slot_vals)
    names = panel["instrument"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, names[1:] != names[:-1], True])
    out: list[ValidationIssue] = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        pos = np.searchsorted(grid, stamps[a:b])
        steps = np.diff(pos) - 1
        n_missing = int(steps[steps > 0].sum()) if len(steps) else 0
        if n_missing == 0:
            continue
        where = np.flatnonzero(steps > 0)
        examples: list[np.datetime64] = []
        for i in where:
            examples.extend(grid[pos[i] + 1: pos[i + 1]][: MAX_EXAMPLES - len(examples)])
            if len(examples) >= MAX_EXAMPLES:
                break
        k = int(np.argmax(steps))
        detail = (f"{len(where)} gap(s), longest {int(steps[k])} bar(s) after "
                  f"{_fmt(stamps[a + k].astype(dt.datetime))}")
        out.append(ValidationIssue("gaps", "warning", str(names[a]), n_missing, "reported",
                                   tuple(e.astype(dt.datetime) for e in examples), detail))
    return out


def _history_issues(panel: pl.DataFrame, calendar: BarCalendar, jump_threshold: float) -> list[ValidationIssue]:
    out: list[ValidationIssue] = []
    first, last = panel["timestamp"].min(), panel["timestamp"].max()
    spans = panel.group_by("instrument", maintain_order=True).agg(
        pl.len().alias("n"), pl.col("timestamp").min().alias("first"), pl.col("timestamp").max().alias("last"))
    n_max = int(spans["n"].max())  # type: ignore[arg-type]
    for row in spans.filter((pl.col("first") > first) | (pl.col("last") < last)).iter_rows(named=True):
        out.append(ValidationIssue(
            "short_history", "info", row["instrument"], row["n"], "reported", (),
            f"{row['n']} rows from {_fmt(row['first'])} to {_fmt(row['last'])} (longest history: {n_max} rows)"))
    log_ret = (pl.col("close") / pl.col("close").shift(1)).log().over("instrument")
    jumps = panel.with_columns(log_ret.alias("r"))
    out += _row_issues(jumps, (jumps["r"].abs() > jump_threshold).fill_null(False), check="suspicious_jump",
                       action="reported", severity="warning",
                       detail=f"|log close return| > {jump_threshold:g}; an unadjusted split or a bad price?")
    out += _row_issues(panel, (panel["volume"] == 0).fill_null(False), check="zero_volume", action="reported",
                       severity="info")
    if calendar.kind in ("daily", "intraday"):
        trading = calendar.trading_days(first, last)
        seen = np.unique(panel["timestamp"].dt.date().to_numpy().astype("datetime64[D]"))
        idle = trading.values.astype("datetime64[D]")[~np.isin(trading.values.astype("datetime64[D]"), seen)]
        if len(idle):
            out.append(ValidationIssue(
                "non_trading_weekdays", "info", None, len(idle), "reported",
                tuple(d.astype("datetime64[us]").astype(dt.datetime) for d in idle[:MAX_EXAMPLES]),
                "weekdays without any bar (exchange holidays or missing data)"))
    return out


def _fill_missing(df: pl.DataFrame) -> pl.DataFrame:
    close = pl.col("close").forward_fill().over("instrument")
    df = df.with_columns(close.alias("close"))
    df = df.with_columns([pl.col(c).fill_null(pl.col("close")) for c in ("open", "high", "low")]
                         + [pl.col("volume").forward_fill().over("instrument").fill_null(0.0)])
    typical = (pl.col("open") + pl.col("high") + pl.col("low") + pl.col("close")) / 4.0
    return df.with_columns(pl.col("amount").fill_null(pl.col("volume") * typical))


def validate_panel(
    panel: pl.DataFrame,
    *,
    policy: Policy = "raise",
    source: str | None = None,
    notes: Sequence[str] = (),
    calendar: BarCalendar | None = None,
    jump_threshold: float = 0.4,
) -> tuple[pl.DataFrame, ValidationReport]:
    """Check ``panel`` (rows in file order, any sort) and apply ``policy``; see the module docstring.

    Returns the cleaned panel, sorted by (instrument, timestamp), and the report. Under "raise"
    any error-severity issue raises ``PanelValidationError`` (a DataError) carrying the report.
    calendar: the expected bar calendar (inferred from the data when None).
    jump_threshold: absolute log close-to-close return above which a bar is flagged.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    check_panel(panel, require_sorted=False)
    label = source or "panel"
    drop = {"raise": "raised", "drop": "dropped", "fill": "dropped"}[policy]
    issues: list[ValidationIssue] = []
    df = panel.with_row_index("__row")
    n_in = df.height

    key_null = df["instrument"].is_null() | df["timestamp"].is_null()
    if key_null.any():
        issues += _row_issues(df.with_columns(pl.col("instrument").fill_null("<null>")), key_null,
                              check="missing_key", action=drop, detail="null instrument or timestamp")
        df = df.filter(~key_null)

    back = (pl.col("timestamp") < pl.col("timestamp").shift(1)).over("instrument").fill_null(False)
    issues += _row_issues(df, df.select(back).to_series(), check="unsorted_timestamps", action="sorted",
                          severity="warning", detail="timestamps decrease in file order")
    df = df.sort(["instrument", "timestamp", "__row"])

    extra = df.select(pl.col("__row") != pl.col("__row").max().over(["instrument", "timestamp"])).to_series()
    if extra.any():
        issues += _row_issues(df, extra, check="duplicate_timestamp",
                              action="raised" if policy == "raise" else "kept last")
        df = df.filter(~extra)

    nulls = df.select(pl.any_horizontal([pl.col(c).is_null() for c in _FIELDS])).to_series()
    if nulls.any():
        per_col = {c: int(df.filter(nulls)[c].null_count()) for c in _FIELDS}
        detail = "null " + ", ".join(f"{c} ({n})" for c, n in per_col.items() if n)
        action = {"raise": "raised", "drop": "dropped", "fill": "filled"}[policy]
        issues += _row_issues(df, nulls, check="missing_values", action=action, detail=detail)

    prices = [pl.col(c) for c in PRICE_FIELDS]
    bad_price = df.select(pl.any_horizontal([p <= 0 for p in prices]).fill_null(False)).to_series()
    bad_volume = df.select(((pl.col("volume") < 0) | (pl.col("amount") < 0)).fill_null(False)).to_series()
    issues += _row_issues(df, bad_price, check="non_positive_price", action=drop, show_values=True)
    issues += _row_issues(df, bad_volume, check="negative_volume", action=drop)
    repair = {"raise": "raised", "drop": "dropped", "fill": "repaired (high/low widened)"}[policy]
    ohlc = {
        "high_below_low": pl.col("high") < pl.col("low"),
        "close_outside_range": (pl.col("close") > pl.col("high")) | (pl.col("close") < pl.col("low")),
        "open_outside_range": (pl.col("open") > pl.col("high")) | (pl.col("open") < pl.col("low")),
    }
    ohlc_masks = {k: df.select(e.fill_null(False)).to_series() for k, e in ohlc.items()}
    for check, mask in ohlc_masks.items():
        issues += _row_issues(df, mask, check=check, action=repair, show_values=True)

    if policy == "drop":
        bad = nulls | bad_price | bad_volume
        for mask in ohlc_masks.values():
            bad = bad | mask
        df = df.filter(~bad)
    elif policy == "fill":
        df = _fill_missing(df.filter(~(bad_price | bad_volume)))
        unfillable = df["close"].is_null()
        if unfillable.any():
            issues += _row_issues(df, unfillable, check="missing_values", action="dropped",
                                  detail="no earlier close to carry forward")
            df = df.filter(~unfillable)
        top = pl.max_horizontal(prices)
        bottom = pl.min_horizontal(prices)
        df = df.with_columns(top.alias("high"), bottom.alias("low"))

    clean = df.drop("__row").cast(PANEL_SCHEMA | {"timestamp": panel.schema["timestamp"]})  # type: ignore[arg-type]
    cal_text = None
    if clean.height:
        cal = calendar
        if cal is None and clean["timestamp"].n_unique() >= 2:
            cal = infer_frequency(clean["timestamp"].unique())
        if cal is not None:
            cal_text = cal.describe()
            issues += _gap_issues(clean, cal) + _history_issues(clean, cal, jump_threshold)
    report = ValidationReport(source=source, policy=policy, n_rows_in=n_in, n_rows_out=clean.height,
                              issues=issues, notes=list(notes), n_instruments=clean["instrument"].n_unique(),
                              calendar=cal_text)
    if policy == "raise" and not report.ok:
        raise PanelValidationError(report)
    for issue in report.issues:
        logger.info("%s: %s", label, issue.line())
    n_bad = sum(i.severity != "info" for i in report.issues)
    if n_bad:
        logger.warning("%s: %d error/warning issue(s) under policy=%r, %d of %d rows kept; see the "
                       "ValidationReport (load_panel_with_report) for details", label, n_bad, policy,
                       report.n_rows_out, report.n_rows_in)
    return clean, report
