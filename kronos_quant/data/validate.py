"""Validate a panel and apply a cleaning policy and exclusions; report every defect found.

This module owns the data-quality checks and the policies that act on them (the report lives
in ``report.py``, the history checks in ``_history.py``). Checks (severity; action under
raise / drop / fill):

=====================  ========  ============================================================
check                  severity  action
=====================  ========  ============================================================
missing_key            error     null instrument or timestamp: raise / drop / drop
identical_duplicates   info      exact copies of a row: dropped (and counted) under every policy
duplicate_timestamp    error     rows for one (instrument, timestamp) that disagree: raise /
                                 drop every row of that bar / same (none of them is trusted;
                                 a warning names the instruments and dates)
missing_values         error     null (or NaN/inf) field: raise / drop / fill (close forward-
                                 filled per instrument; open/high/low from the bar's close;
                                 volume forward-filled, else 0; amount = volume x typical
                                 price; rows with no close to carry forward are dropped)
non_positive_price     error     open/high/low/close <= 0: raise / drop / drop
negative_volume        error     volume or amount < 0: raise / drop / drop
high_below_low         error     raise / drop / fill (high, low := max, min of o, h, l, c)
close_outside_range    error     close not in [low, high]: raise / drop / fill (widen high/low)
open_outside_range     error     open not in [low, high]: raise / drop / fill (widen high/low)
unsorted_timestamps    warning   timestamps decrease in file order: sorted under every policy
gaps                   warning   bars missing from the expected grid: reported; gaps longer
                                 than ``max_gap_bars`` are history breaks (``report.breaks``)
suspicious_jump        warning   |log close return| > jump_threshold (splits?): reported
short_history          info      instrument starts after / ends before the panel: reported
zero_volume            info      bars with volume 0: reported
non_trading_weekdays   info      trading weekdays with no bar at all (holidays?): reported
=====================  ========  ============================================================

Exclusions: ``exclude`` names checks whose failing instruments are dropped whole (recorded in
``report.exclusions`` with the reason): ``"jumps"`` (any suspicious_jump) and ``"gaps"`` (any
gap longer than ``max_gap_bars``). In a strategy file: ``data.validation: {policy: drop,
exclude: [jumps, gaps], max_gap_bars: 10}``. Without ``"gaps"``, broken histories are kept and
their segment starts are listed in ``report.breaks`` for the engine (see ``report.py``).

Every dropped row is counted in ``report.dropped`` under the first reason that removed it, so
n_rows_in = n_rows_out + sum(dropped.values()). Gaps are never "fixed" by inventing bars:
made-up flat bars distort returns, volatility and the model's inputs.

Knows nothing about file formats (see ``panel.py``) or models.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Literal

import polars as pl

from kronos_quant.data._history import gap_issues, history_issues, row_issues
from kronos_quant.data.calendar import BarCalendar, infer_frequency
from kronos_quant.data.contract import PANEL_SCHEMA, check_panel
from kronos_quant.data.report import (
    Exclusion,
    PanelValidationError,
    ValidationIssue,
    ValidationReport,
    fmt_time,
)
from kronos_quant.errors import ConfigError
from kronos_quant.schema import PANEL_COLUMNS, PRICE_FIELDS

__all__ = ["Policy", "POLICIES", "EXCLUDABLE", "DEFAULT_MAX_GAP_BARS", "DEFAULT_JUMP_THRESHOLD",
           "ValidationIssue", "ValidationReport", "PanelValidationError", "validate_panel"]

logger = logging.getLogger(__name__)

Policy = Literal["raise", "drop", "fill"]
POLICIES: tuple[str, ...] = ("raise", "drop", "fill")
EXCLUDABLE: dict[str, str] = {"jumps": "suspicious_jump", "gaps": "gaps"}  # exclude name -> check
DEFAULT_MAX_GAP_BARS = 10  # two trading weeks of daily bars; longer gaps break an instrument's history
DEFAULT_JUMP_THRESHOLD = 0.4  # |log close return| (a 49% rise or 33% fall in one bar)
_FIELDS = [c for c in PANEL_COLUMNS if c not in ("instrument", "timestamp")]
_MAX_LISTED = 10


def _non_finite_to_null(df: pl.DataFrame, notes: list[str]) -> pl.DataFrame:
    bad = df.select(pl.sum_horizontal([(~pl.col(c).is_finite()).fill_null(False) for c in _FIELDS])).to_series()
    n_bad = int(bad.sum())
    if n_bad:
        notes.append(f"{n_bad} NaN/inf value(s) treated as missing")
        df = df.with_columns([pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c) for c in _FIELDS])
    return df


def _conflict_detail(grp: pl.DataFrame) -> str:
    first = grp.filter(pl.col("timestamp") == grp["timestamp"][0])
    differ = [f"{c} {' / '.join(f'{v:g}' if v is not None else 'null' for v in first[c].to_list())}"
              for c in _FIELDS if first[c].n_unique() > 1]
    return f"rows for one bar disagree (first: {'; '.join(differ)}); none of them is trusted"


def _duplicates(df: pl.DataFrame, *, policy: str, label: str,
                dropped: dict[str, int]) -> tuple[pl.DataFrame, list[ValidationIssue]]:
    """Drop exact copies (info) and every row of a bar whose rows disagree (error); df sorted by key, file row."""
    issues: list[ValidationIssue] = []
    copies = ~df.select(pl.struct(["instrument", "timestamp", *_FIELDS]).is_first_distinct()).to_series()
    if copies.any():
        issues += row_issues(df, copies, check="identical_duplicates", action="dropped", severity="info",
                             detail="exact copies of an earlier row")
        dropped["identical_duplicates"] = int(copies.sum())
        df = df.filter(~copies)
    clash = df.select(pl.struct("instrument", "timestamp").is_duplicated()).to_series()
    if not clash.any():
        return df, issues
    action = "raised" if policy == "raise" else "dropped (every row of the bar)"
    hit = df.filter(clash)
    for _, grp in hit.group_by(["instrument"], maintain_order=True):
        issues += row_issues(grp, pl.Series("hit", [True] * grp.height, dtype=pl.Boolean), check="duplicate_timestamp", action=action,
                             detail=_conflict_detail(grp))
    if policy != "raise":
        bars = hit.group_by(["instrument", "timestamp"], maintain_order=True).len()
        listed = ", ".join(f"{i} {fmt_time(t)} ({n} rows)" for i, t, n in bars.head(_MAX_LISTED).iter_rows())
        more = f" and {bars.height - _MAX_LISTED} more" if bars.height > _MAX_LISTED else ""
        logger.warning("%s: %d bar(s) have conflicting duplicate rows and were dropped: %s%s", label, bars.height,
                       listed, more)
    dropped["duplicate_timestamp"] = int(clash.sum())
    return df.filter(~clash), issues


def _fill_missing(df: pl.DataFrame) -> pl.DataFrame:
    close = pl.col("close").forward_fill().over("instrument")
    df = df.with_columns(close.alias("close"))
    df = df.with_columns([pl.col(c).fill_null(pl.col("close")) for c in ("open", "high", "low")]
                         + [pl.col("volume").forward_fill().over("instrument").fill_null(0.0)])
    typical = (pl.col("open") + pl.col("high") + pl.col("low") + pl.col("close")) / 4.0
    return df.with_columns(pl.col("amount").fill_null(pl.col("volume") * typical))


def _drop(df: pl.DataFrame, masks: dict[str, pl.Series], dropped: dict[str, int]) -> pl.DataFrame:
    """Remove rows where any mask is true; each row counted once, under the first mask that hit it."""
    gone = pl.Series("gone", [False] * df.height, dtype=pl.Boolean)
    for name, mask in masks.items():
        new = mask & ~gone
        if new.any():
            dropped[name] = dropped.get(name, 0) + int(new.sum())
        gone = gone | mask
    return df.filter(~gone)


def _exclude(clean: pl.DataFrame, issues: list[ValidationIssue], broken: dict[str, int], exclude: Sequence[str],
             dropped: dict[str, int]) -> tuple[pl.DataFrame, list[ValidationIssue], list[Exclusion]]:
    """Drop whole instruments failing the ``exclude`` checks; mark their issues' action "excluded"."""
    reasons: dict[str, tuple[str, str]] = {}
    for issue in issues:
        name = issue.instrument
        if name is None or name in reasons:
            continue
        if "jumps" in exclude and issue.check == "suspicious_jump":
            reasons[name] = ("jumps", f"{issue.count} |log return| jump(s), first at {fmt_time(issue.timestamps[0])}")
        elif "gaps" in exclude and issue.check == "gaps" and name in broken:
            reasons[name] = ("gaps", f"{broken[name]} gap(s) longer than max_gap_bars ({issue.detail})")
    if not reasons:
        return clean, issues, []
    sizes = dict(clean.filter(pl.col("instrument").is_in(list(reasons))).group_by("instrument").len().iter_rows())
    exclusions = [Exclusion(name, check, int(sizes[name]), detail) for name, (check, detail) in sorted(reasons.items())]
    dropped["excluded"] = sum(e.n_rows for e in exclusions)
    issues = [dataclasses.replace(i, action="excluded (instrument dropped)")
              if i.instrument in reasons and i.check in {EXCLUDABLE[reasons[i.instrument][0]]} else i for i in issues]
    return clean.filter(~pl.col("instrument").is_in(list(reasons))), issues, exclusions


def _check_options(policy: str, exclude: Sequence[str], max_gap_bars: int, jump_threshold: float) -> None:
    if policy not in POLICIES:
        raise ConfigError(f"policy must be one of {POLICIES}, got {policy!r}")
    unknown = [e for e in exclude if e not in EXCLUDABLE]
    if unknown:
        raise ConfigError(f"exclude must name checks among {list(EXCLUDABLE)}, got {unknown}")
    if int(max_gap_bars) < 1 or not jump_threshold > 0:
        raise ConfigError(f"max_gap_bars must be >= 1 and jump_threshold > 0, got {max_gap_bars}, {jump_threshold}")


def validate_panel(
    panel: pl.DataFrame,
    *,
    policy: Policy = "raise",
    source: str | None = None,
    notes: Sequence[str] = (),
    calendar: BarCalendar | None = None,
    jump_threshold: float = DEFAULT_JUMP_THRESHOLD,
    exclude: Sequence[str] = (),
    max_gap_bars: int = DEFAULT_MAX_GAP_BARS,
    adjust: str = "none",
) -> tuple[pl.DataFrame, ValidationReport]:
    """Check ``panel`` (rows in file order, any sort) and apply ``policy``; see the module docstring.

    Returns the cleaned panel, sorted by (instrument, timestamp), and the report. Under "raise"
    any error-severity issue raises ``PanelValidationError`` (a DataError) carrying the report.
    calendar: the expected bar calendar (inferred from the data when None).
    jump_threshold: absolute log close-to-close return above which a bar is flagged.
    exclude: checks ("jumps", "gaps") whose failing instruments are dropped whole.
    max_gap_bars: gaps longer than this many expected bars are history breaks.
    adjust: how the loader adjusted prices (only recorded in the report).
    """
    _check_options(policy, exclude, max_gap_bars, jump_threshold)
    check_panel(panel, require_sorted=False)
    label = source or "panel"
    notes = list(notes)
    drop = {"raise": "raised", "drop": "dropped", "fill": "dropped"}[policy]
    issues: list[ValidationIssue] = []
    dropped: dict[str, int] = {}
    df = _non_finite_to_null(panel.with_row_index("__row"), notes)
    n_in = df.height

    key_null = df["instrument"].is_null() | df["timestamp"].is_null()
    if key_null.any():
        issues += row_issues(df.with_columns(pl.col("instrument").fill_null("<null>")), key_null,
                             check="missing_key", action=drop, detail="null instrument or timestamp")
        dropped["missing_key"] = int(key_null.sum())
        df = df.filter(~key_null)

    back = (pl.col("timestamp") < pl.col("timestamp").shift(1)).over("instrument").fill_null(False)
    issues += row_issues(df, df.select(back).to_series(), check="unsorted_timestamps", action="sorted",
                         severity="warning", detail="timestamps decrease in file order")
    df = df.sort(["instrument", "timestamp", "__row"])
    df, found = _duplicates(df, policy=policy, label=label, dropped=dropped)
    issues += found

    nulls = df.select(pl.any_horizontal([pl.col(c).is_null() for c in _FIELDS])).to_series()
    if nulls.any():
        per_col = {c: int(df.filter(nulls)[c].null_count()) for c in _FIELDS}
        detail = "null " + ", ".join(f"{c} ({n})" for c, n in per_col.items() if n)
        action = {"raise": "raised", "drop": "dropped", "fill": "filled"}[policy]
        issues += row_issues(df, nulls, check="missing_values", action=action, detail=detail)

    prices = [pl.col(c) for c in PRICE_FIELDS]
    bad_price = df.select(pl.any_horizontal([p <= 0 for p in prices]).fill_null(False)).to_series()
    bad_volume = df.select(((pl.col("volume") < 0) | (pl.col("amount") < 0)).fill_null(False)).to_series()
    issues += row_issues(df, bad_price, check="non_positive_price", action=drop, show_values=True)
    issues += row_issues(df, bad_volume, check="negative_volume", action=drop)
    repair = {"raise": "raised", "drop": "dropped", "fill": "repaired (high/low widened)"}[policy]
    ohlc = {
        "high_below_low": pl.col("high") < pl.col("low"),
        "close_outside_range": (pl.col("close") > pl.col("high")) | (pl.col("close") < pl.col("low")),
        "open_outside_range": (pl.col("open") > pl.col("high")) | (pl.col("open") < pl.col("low")),
    }
    ohlc_masks = {k: df.select(e.fill_null(False)).to_series() for k, e in ohlc.items()}
    for check, mask in ohlc_masks.items():
        issues += row_issues(df, mask, check=check, action=repair, show_values=True)

    if policy == "fill":
        df = _drop(df, {"non_positive_price": bad_price, "negative_volume": bad_volume}, dropped)
        df = _fill_missing(df)
        unfillable = df["close"].is_null()
        if unfillable.any():
            issues += row_issues(df, unfillable, check="missing_values", action="dropped",
                                 detail="no earlier close to carry forward")
            df = _drop(df, {"missing_values": unfillable}, dropped)
        df = df.with_columns(pl.max_horizontal(prices).alias("high"), pl.min_horizontal(prices).alias("low"))
    else:  # raise drops too, so that the checks below see clean rows; it raises before returning them
        df = _drop(df, {"missing_values": nulls, "non_positive_price": bad_price, "negative_volume": bad_volume,
                        **ohlc_masks}, dropped)

    clean = df.drop("__row").cast(PANEL_SCHEMA | {"timestamp": panel.schema["timestamp"]})  # type: ignore[arg-type]
    cal_text, exclusions, breaks = None, [], []
    if clean.height:
        cal = calendar
        if cal is None and clean["timestamp"].n_unique() >= 2:
            cal = infer_frequency(clean["timestamp"].unique())
        if cal is not None:
            cal_text = cal.describe()
            found, breaks = gap_issues(clean, cal, max_gap_bars=max_gap_bars)
            issues += found + history_issues(clean, cal, jump_threshold)
            broken: dict[str, int] = {}
            for b in breaks:
                broken[b.instrument] = broken.get(b.instrument, 0) + 1
            clean, issues, exclusions = _exclude(clean, issues, broken, exclude, dropped)
            kept = set(clean["instrument"].unique().to_list())
            breaks = [b for b in breaks if b.instrument in kept]
    report = ValidationReport(source=source, policy=policy, n_rows_in=n_in, n_rows_out=clean.height,
                              issues=issues, notes=notes, n_instruments=clean["instrument"].n_unique(),
                              calendar=cal_text, dropped=dropped, exclusions=exclusions, breaks=breaks,
                              max_gap_bars=max_gap_bars, jump_threshold=jump_threshold, exclude=tuple(exclude),
                              adjust=adjust)
    if policy == "raise" and not report.ok:
        raise PanelValidationError(report)
    for issue in report.issues:
        logger.info("%s: %s", label, issue.line())
    for exclusion in exclusions:
        logger.warning("%s: %s", label, exclusion.line())
    bad: dict[str, list[str]] = {}
    for issue in report.issues:
        if issue.severity != "info":
            bad.setdefault(issue.check, []).append(issue.instrument or "(panel)")
    if bad:
        what = "; ".join(f"{check}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
                         for check, names in bad.items())
        logger.warning("%s: %d error/warning issue(s) (%s) under policy=%r, %d of %d rows kept; see the "
                       "ValidationReport (load_panel_with_report) for details", label,
                       sum(map(len, bad.values())), what, policy, report.n_rows_out, report.n_rows_in)
    return clean, report
