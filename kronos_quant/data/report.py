"""What validation found and did: ``ValidationReport`` and its parts, and ``PanelValidationError``.

The report is the data layer's record for provenance: every issue (check, instrument, count,
example timestamps, action), the rows dropped per reason (``dropped``: n_rows_in = n_rows_out +
sum(dropped.values())), the instruments excluded by ``exclude`` (``exclusions``), the price
adjustment applied (``adjust``), and where each kept instrument's history is broken by a gap
longer than ``max_gap_bars`` (``breaks``).

Segment contract (for the engine): an instrument's bars form contiguous segments separated by
its ``breaks``. ``SegmentBreak.start`` is the first bar after a long gap (the start of a new
segment). A window of bars [a, b] of instrument i (look-back and forecast horizon together)
bridges a gap exactly when some break of i has a < start <= b; such a window should not be
forecast. ``segment_starts()`` gives the starts per instrument and ``breaks_frame()`` the same
as a polars frame (instrument, start, previous, missing_bars) to join on.

Knows nothing about file formats or models.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import polars as pl

from kronos_quant.errors import DataError

__all__ = ["MAX_EXAMPLES", "Severity", "ValidationIssue", "Exclusion", "SegmentBreak", "ValidationReport", "PanelValidationError"]

Severity = Literal["error", "warning", "info"]
MAX_EXAMPLES = 5  # example timestamps kept per issue


def fmt_time(t: dt.datetime) -> str:
    """A date when ``t`` is midnight, else the full time."""
    return t.strftime("%Y-%m-%d") if (t.hour, t.minute, t.second, t.microsecond) == (0, 0, 0, 0) else t.isoformat(" ")


@dataclass(frozen=True)
class ValidationIssue:
    """One check's finding for one instrument (``instrument`` None: the whole panel)."""

    check: str
    severity: Severity
    instrument: str | None
    count: int
    action: str
    timestamps: tuple[dt.datetime, ...] = ()  # up to a few examples, earliest first
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["timestamps"] = [t.isoformat() for t in self.timestamps]
        return out

    def line(self) -> str:
        when = ", ".join(fmt_time(t) for t in self.timestamps)
        more = " ..." if len(self.timestamps) >= MAX_EXAMPLES and self.count > MAX_EXAMPLES else ""
        parts = [f"{self.check}: {self.instrument or '(panel)'}: {self.count}"]
        if when:
            parts.append(f"at {when}{more}")
        if self.detail:
            parts.append(self.detail)
        return " | ".join(parts) + f" -> {self.action}"


@dataclass(frozen=True)
class Exclusion:
    """An instrument dropped whole because it failed ``check`` ("jumps" or "gaps"); ``n_rows`` rows removed."""

    instrument: str
    check: str
    n_rows: int
    detail: str

    def line(self) -> str:
        return f"{self.instrument}: excluded ({self.check}: {self.detail}; {self.n_rows} rows)"


@dataclass(frozen=True)
class SegmentBreak:
    """``missing_bars`` expected bars are missing between ``previous`` and ``start`` (bars of ``instrument``)."""

    instrument: str
    start: dt.datetime  # first bar after the gap: a new segment starts here
    previous: dt.datetime  # last bar before the gap
    missing_bars: int

    def to_dict(self) -> dict[str, Any]:
        return {"instrument": self.instrument, "start": self.start.isoformat(), "previous": self.previous.isoformat(),
                "missing_bars": self.missing_bars}


@dataclass
class ValidationReport:
    """All issues of one validation run, the loader's notes, and what was dropped, excluded and broken."""

    source: str | None
    policy: str | None
    n_rows_in: int
    n_rows_out: int
    issues: list[ValidationIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_instruments: int = 0
    calendar: str | None = None
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows removed
    exclusions: list[Exclusion] = field(default_factory=list)
    breaks: list[SegmentBreak] = field(default_factory=list)
    max_gap_bars: int | None = None
    jump_threshold: float | None = None
    exclude: tuple[str, ...] = ()
    adjust: str = "none"

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

    def segment_starts(self) -> dict[str, list[dt.datetime]]:
        """instrument -> the first bars after its long gaps, ascending (instruments without breaks absent)."""
        out: dict[str, list[dt.datetime]] = {}
        for b in sorted(self.breaks, key=lambda b: (b.instrument, b.start)):
            out.setdefault(b.instrument, []).append(b.start)
        return out

    def breaks_frame(self) -> pl.DataFrame:
        """One row per break: instrument, start, previous, missing_bars (see the module docstring)."""
        schema = {"instrument": pl.Utf8, "start": pl.Datetime("us"), "previous": pl.Datetime("us"),
                  "missing_bars": pl.Int64}
        if not self.breaks:
            return pl.DataFrame(schema=schema)
        return pl.DataFrame([asdict(b) for b in self.breaks]).with_columns(
            pl.col("start", "previous").dt.cast_time_unit("us"), pl.col("missing_bars").cast(pl.Int64))

    def summary(self, *, max_lines: int | None = 60, show_all: str = "summary(max_lines=None)") -> str:
        """Human-readable multi-line summary (errors first); ``max_lines`` None or 0: every line.
        show_all: how the cut-off line says to see every line (the CLI: ``--max-lines 0``)."""
        head = (f"validation of {self.source or 'panel'} (policy={self.policy!r}): {self.n_rows_in} rows in, "
                f"{self.n_rows_out} out, {self.n_instruments} instruments")
        lines = [head] + ([f"calendar: {self.calendar}"] if self.calendar else [])
        if self.adjust != "none":
            lines.append(f"prices adjusted: {self.adjust}")
        if self.dropped:
            lines.append("rows dropped: " + ", ".join(f"{k} {v}" for k, v in self.dropped.items()))
        for severity in ("error", "warning", "info"):
            group = [i for i in self.issues if i.severity == severity]
            if group:
                lines.append(f"{severity}s ({len(group)}):")
                lines += [f"  {i.line()}" for i in group]
        if not self.issues:
            lines.append("no issues found")
        lines += [f"exclusion: {e.line()}" for e in self.exclusions]
        if self.breaks:
            lines.append(f"history breaks (gaps > {self.max_gap_bars} bars): {len(self.breaks)}")
            lines += [f"  {b.instrument}: {b.missing_bars} bars missing, new segment from {fmt_time(b.start)}"
                      for b in self.breaks]
        lines += [f"note: {n}" for n in self.notes]
        if max_lines and len(lines) > max_lines:
            lines = lines[: max_lines - 1] + [f"... {len(lines) - max_lines + 1} more lines ({show_all} shows them all)"]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"source": self.source, "policy": self.policy, "n_rows_in": self.n_rows_in,
                "n_rows_out": self.n_rows_out, "n_instruments": self.n_instruments, "calendar": self.calendar,
                "ok": self.ok, "adjust": self.adjust, "dropped": dict(self.dropped),
                "exclude": list(self.exclude), "max_gap_bars": self.max_gap_bars,
                "jump_threshold": self.jump_threshold, "issues": [i.to_dict() for i in self.issues],
                "exclusions": [asdict(e) for e in self.exclusions], "breaks": [b.to_dict() for b in self.breaks],
                "notes": list(self.notes)}

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
            + "\npass policy='drop' to drop the offending rows or policy='fill' to repair what can be repaired "
            "(strategy file: data.validation: drop | fill)"
        )
