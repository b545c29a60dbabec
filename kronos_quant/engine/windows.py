"""Planning and slicing of rolling forecast windows: panel arrays -> work items -> windows.

Owns: choosing the (instrument, as-of) work items of a rolling run (``plan_windows``) and cutting
each item's input window, time features and target timestamps (``build_windows``). A window for
as-of bar t holds only bars <= t; only the *timestamps* of later bars are read (to label
targets). The panel -> arrays conversion is the data layer's (``data.arrays.panel_arrays``),
and so is where an instrument's history is broken (its segments): windows are cut there and
never forecast across one, but which gaps count as breaks is decided by validation, not here.

Knows nothing about models, tokenization, caching or the forecast table. Work items are small
frozen dataclasses, so a distributed backend can ship them to workers.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import polars as pl

from kronos_quant.data.arrays import InstrumentArrays, PanelArrays, local_index, panel_arrays
from kronos_quant.data.bounds import bound_ns
from kronos_quant.data.calendar import future_timestamps
from kronos_quant.data.timefeatures import time_features
from kronos_quant.engine.spec import RollingSpec
from kronos_quant.schema import CLOSE_INDEX

__all__ = ["WorkItem", "Window", "RollingPlan", "plan_rolling", "plan_windows", "build_windows", "series_seed"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkItem:
    """Forecast ``instrument`` as of its bar ``end`` (timestamp ``asof_ns``) from rows start..end."""

    instrument: str
    asof_ns: int
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass
class Window:
    """Inputs of one forecast. series: (T, 6); past_stamps: (T, 5); future_stamps: (H, 5);
    target_ns: (H,) int64 UTC ns of the forecast bars; seed: the per-series sampling seed."""

    item: WorkItem
    series: np.ndarray
    past_stamps: np.ndarray
    past_ns: np.ndarray
    future_stamps: np.ndarray
    target_ns: np.ndarray
    seed: int

    @property
    def last_close(self) -> float:
        return float(self.series[-1, CLOSE_INDEX])


def series_seed(base_seed: int, instrument: str, asof_ns: int) -> int:
    """Stable 63-bit seed of one (instrument, as-of): independent of batching and sharding."""
    digest = hashlib.sha256(f"series-seed|{int(base_seed)}|{instrument}|{int(asof_ns)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _rebalance_grid(data: PanelArrays, spec: RollingSpec) -> np.ndarray:
    """Sorted UTC-ns as-of dates on the union calendar."""
    cal, tz = data.calendar_ns, data.time_zone
    lo = bound_ns(spec.start, tz=tz, is_end=False)
    hi = bound_ns(spec.end, tz=tz, is_end=True)
    if isinstance(spec.rebalance, int):
        if lo is None:
            # Anchor at the first date on which some instrument has min_history bars, so that the
            # grid does not move when the end of the data grows (nightly runs reuse the cache).
            n = spec.history
            firsts = [a.stamps_ns[n - 1] for a in data.instruments.values() if len(a.stamps_ns) >= n]
            if not firsts:
                return np.empty(0, dtype=np.int64)
            lo = int(min(firsts))
        grid = cal[cal >= lo][:: spec.rebalance]
    else:
        wanted = np.array([bound_ns(d, tz=tz, is_end=True, name="rebalance date") for d in spec.rebalance],
                          dtype=np.int64)
        pos = np.searchsorted(cal, wanted, side="right") - 1  # last calendar bar <= date
        if (pos < 0).any():
            logger.warning("%d rebalance date(s) precede the data and are skipped", int((pos < 0).sum()))
        grid = np.unique(cal[pos[pos >= 0]])
        if lo is not None:
            grid = grid[grid >= lo]
    if hi is not None:
        grid = grid[grid <= hi]
    return grid


@dataclass
class RollingPlan:
    """The work items of a rolling run and what planning left out.

    items: as ``plan_windows``. cut_at_breaks: items whose window was shortened to start at a
    history break (kept: they still hold ``spec.history`` bars). skipped_at_breaks: windows not
    forecast because of a break (too short once cut, or their forecast bars lie after the break).
    skipped_short: windows with fewer than ``spec.history`` clean bars (the start of a history or a
    missing value). unplanned: instrument -> why it got no item at all (one line).
    """

    items: list[WorkItem]
    cut_at_breaks: int = 0
    skipped_at_breaks: int = 0
    skipped_short: int = 0
    unplanned: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """The counts for provenance: windows, cut_at_breaks, skipped_at_breaks, skipped_short."""
        return {"windows": len(self.items), "cut_at_breaks": self.cut_at_breaks,
                "skipped_at_breaks": self.skipped_at_breaks, "skipped_short": self.skipped_short}


def _day(data: PanelArrays, ns: int) -> str:
    return str(local_index(np.asarray([ns], dtype=np.int64), data.time_zone)[0].date())


def plan_rolling(data: PanelArrays | pl.DataFrame, spec: RollingSpec) -> RollingPlan:
    """The (instrument, as-of) work items of a rolling run (see ``plan_windows``) with counts of the
    windows cut or skipped at history breaks and the reason each instrument without an item has none."""
    if not isinstance(data, PanelArrays):
        data = panel_arrays(data)
    grid = _rebalance_grid(data, spec)
    plan = RollingPlan([])
    for name, arr in data.instruments.items():
        pos = np.searchsorted(arr.stamps_ns, grid)
        ok = pos < len(arr.stamps_ns)
        ok[ok] = arr.stamps_ns[pos[ok]] == grid[ok]  # the instrument has a bar exactly at the grid date
        ends = pos[ok]
        if not len(ends):
            inside = len(grid) and ((arr.stamps_ns >= grid[0]) & (arr.stamps_ns <= grid[-1])).any()
            span = f"its bars run from {_day(data, arr.stamps_ns[0])} to {_day(data, arr.stamps_ns[-1])}"
            plan.unplanned[name] = (f"no bar on a rebalance date ({span})" if inside
                                    else f"no bars in the forecast period ({span})")
            continue
        unbroken = np.maximum(ends - spec.lookback + 1, arr.last_bad[ends] + 1)  # the cut without breaks
        firsts = np.maximum(unbroken, arr.segment_start[ends])
        long_enough = ends - firsts + 1 >= spec.history
        keep = long_enough & ~arr.crosses_break(ends, spec.horizon)
        at_break = ~keep & ((ends - unbroken + 1 >= spec.history) | long_enough)
        plan.cut_at_breaks += int((keep & (firsts > unbroken)).sum())
        plan.skipped_at_breaks += int(at_break.sum())
        plan.skipped_short += int((~keep & ~at_break).sum())
        for first, t in zip(firsts[keep].tolist(), ends[keep].tolist()):
            plan.items.append(WorkItem(name, int(arr.stamps_ns[t]), first, t))
        if not keep.any():
            plan.unplanned[name] = (
                "every window spans a history break (a gap longer than the validation's max_gap_bars)"
                if at_break.any() else f"too little history: at most {int((ends - firsts + 1).max())} clean bars up "
                f"to an as-of date, min_history is {spec.history}")
    plan.items.sort(key=lambda it: (it.asof_ns, it.instrument))
    if plan.cut_at_breaks or plan.skipped_at_breaks:
        logger.info("history breaks: %d windows cut, %d skipped (no window spans a gap longer than the validation "
                    "limit)", plan.cut_at_breaks, plan.skipped_at_breaks)
    return plan


def plan_windows(data: PanelArrays | pl.DataFrame, spec: RollingSpec) -> list[WorkItem]:
    """The (instrument, as-of) work items of a rolling run, ordered by (as-of, instrument).

    As-of dates form a grid on the union calendar of all instruments: every ``spec.rebalance``
    bars from ``spec.start`` (or from the first date any instrument has ``spec.history`` bars),
    or the explicit dates given (each mapped to the last calendar bar on or before it; a date
    without a time of day means the end of that day), within [start, end] (a date-only ``end``
    includes the whole day). An instrument gets an item at a grid date when it has a bar exactly
    there whose values are finite; its window is the last ``lookback`` bars up to and including
    that bar, cut after the latest bar with a missing/non-finite value and at the start of the
    bar's history segment (``InstrumentArrays.first_clean``), and kept only if it still holds at
    least ``spec.history`` bars and its next ``spec.horizon`` bars lie in the same segment (a
    forecast is never scored across a history break). Counts of what was left out:
    ``plan_rolling``.
    """
    return plan_rolling(data, spec).items


def _calendar_future(data: PanelArrays, arr: InstrumentArrays, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n,) UTC ns and (n, 5) features of the bars after the instrument's last bar.

    They follow the panel's bar calendar (one calendar is assumed for all instruments, so an
    instrument that stopped trading early is extended on the same schedule as the others).
    """
    last_ns = int(arr.stamps_ns[-1])
    cached = data._futures.get(last_ns)  # instruments ending on the same bar share their future
    if cached is not None and len(cached[0]) >= n:
        return cached[0][:n], cached[1][:n]
    last = local_index(arr.stamps_ns[-1:], data.time_zone)
    future = pd.DatetimeIndex(future_timestamps(last, n, calendar=data.bar_calendar()))
    features = time_features(future)
    utc = future.tz_convert("UTC").tz_localize(None) if future.tz is not None else future
    ns = np.asarray(utc.as_unit("ns").asi8, dtype=np.int64)
    data._futures[last_ns] = (ns, features)
    return ns, features


def build_windows(data: PanelArrays, items: list[WorkItem] | tuple[WorkItem, ...], spec: RollingSpec
                  ) -> list[Window]:
    """Cut the input window and target timestamps of each item (arrays are views, not copies).

    Target timestamps are the instrument's own next ``spec.horizon`` bar timestamps where they
    exist; beyond its last bar they follow the panel's bar calendar
    (``data.calendar.future_timestamps``). Seeds: ``series_seed(spec.sampling.seed, ...)``.
    """
    horizon = spec.horizon
    windows: list[Window] = []
    for it in items:
        arr = data.instruments[it.instrument]
        n_bars = len(arr.stamps_ns)
        known = slice(it.end + 1, min(it.end + 1 + horizon, n_bars))
        target_ns, future = arr.stamps_ns[known], arr.features[known]
        if len(target_ns) < horizon:
            extra_ns, extra_f = _calendar_future(data, arr, horizon)  # computed once per instrument
            extra_ns, extra_f = extra_ns[: horizon - len(target_ns)], extra_f[: horizon - len(target_ns)]
            target_ns = np.concatenate([target_ns, extra_ns])
            future = np.concatenate([future, extra_f])
        past = slice(it.start, it.end + 1)
        windows.append(
            Window(
                item=it,
                series=arr.values[past],
                past_stamps=arr.features[past],
                past_ns=arr.stamps_ns[past],
                future_stamps=future,
                target_ns=target_ns,
                seed=series_seed(spec.sampling.seed, it.instrument, it.asof_ns),
            )
        )
    return windows
