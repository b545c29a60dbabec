"""Planning and slicing of rolling forecast windows: panel -> arrays -> work items -> windows.

Owns: turning the long panel into per-instrument arrays once (``prepare_panel``), choosing the
(instrument, as-of) work items of a rolling run (``plan_windows``), and cutting each item's input
window, time features and target timestamps (``build_windows``). A window for as-of bar t holds
only bars <= t; only the *timestamps* of later bars are read (to label targets).

Knows nothing about models, tokenization, caching or the forecast table. Work items are small
frozen dataclasses, so a distributed backend can ship them to workers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from kronos_quant.data.calendar import BarCalendar, future_timestamps, infer_frequency
from kronos_quant.data.timefeatures import time_features
from kronos_quant.errors import DataError
from kronos_quant.schema import CLOSE_INDEX, FIELDS

__all__ = [
    "InstrumentArrays",
    "PanelArrays",
    "WorkItem",
    "Window",
    "prepare_panel",
    "plan_windows",
    "build_windows",
    "series_seed",
]

logger = logging.getLogger(__name__)


@dataclass
class InstrumentArrays:
    """One instrument's bars. values: (T, 6) float64 in FIELDS order; stamps_ns: (T,) int64 UTC ns;
    features: (T, 5) int64 time features; last_bad: (T,) index of the latest row <= t holding a
    non-finite value (-1 if none)."""

    instrument: str
    values: np.ndarray
    stamps_ns: np.ndarray
    features: np.ndarray
    last_bad: np.ndarray


@dataclass
class PanelArrays:
    """The panel as arrays: instruments by name, the union calendar (sorted unique UTC ns) and
    the time zone / unit of the original timestamp column (to convert results back)."""

    instruments: dict[str, InstrumentArrays]
    calendar_ns: np.ndarray
    time_zone: str | None
    time_unit: str
    _bar_calendar: BarCalendar | None = field(default=None, repr=False)
    _futures: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def bar_calendar(self) -> BarCalendar:
        """The panel's bar calendar (given, or inferred once from the latest union timestamps)."""
        if self._bar_calendar is None:
            self._bar_calendar = infer_frequency(_local_index(self.calendar_ns[-5000:], self.time_zone))
        return self._bar_calendar


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


def _utc_ns_expr(dtype: pl.DataType) -> pl.Expr:
    col = pl.col("timestamp")
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return col.dt.cast_time_unit("ns").cast(pl.Int64)


def prepare_panel(panel: pl.DataFrame | Any, *, calendar: BarCalendar | None = None) -> PanelArrays:
    """Validate a panel (see ``schema.PANEL_COLUMNS``) and split it into per-instrument arrays.

    calendar: the bar calendar used to extend target timestamps past the last bar (default:
    inferred from the panel's timestamps when first needed).
    """
    if isinstance(panel, pd.DataFrame):
        panel = pl.from_pandas(panel)
    if not isinstance(panel, pl.DataFrame):
        raise TypeError(f"panel must be a polars DataFrame, got {type(panel).__name__}")
    missing = [c for c in ("instrument", "timestamp", *FIELDS) if c not in panel.columns]
    if missing:
        hint = " (add amount = volume * mean(open, high, low, close))" if missing == ["amount"] else ""
        raise DataError(
            f"panel lacks column(s) {missing}{hint}; expected {['instrument', 'timestamp', *FIELDS]}"
        )
    ts_dtype = panel.schema["timestamp"]
    if ts_dtype == pl.Date:
        panel = panel.with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
        ts_dtype = panel.schema["timestamp"]
    if not isinstance(ts_dtype, pl.Datetime):
        raise DataError(f"panel column 'timestamp' must be Date or Datetime, got {ts_dtype}; parse it first")
    frame = panel.select(
        pl.col("instrument").cast(pl.Utf8),
        pl.col("timestamp"),
        _utc_ns_expr(ts_dtype).alias("_ns"),
        *[pl.col(f).cast(pl.Float64) for f in FIELDS],
    ).sort("instrument", "_ns")
    if frame["instrument"].null_count() or frame["_ns"].null_count():
        raise DataError("panel has null instrument or timestamp values; drop those rows first")
    dup = frame.select(pl.struct("instrument", "_ns").is_duplicated().any()).item()
    if dup:
        raise DataError("panel has duplicate (instrument, timestamp) rows; deduplicate it first")
    instruments: dict[str, InstrumentArrays] = {}
    for part in frame.partition_by("instrument", maintain_order=True):
        name = str(part["instrument"][0])
        values = part.select(FIELDS).to_numpy().astype(np.float64, copy=False)
        values = np.ascontiguousarray(values)
        bad = ~np.isfinite(values).all(axis=1)
        last_bad = np.maximum.accumulate(np.where(bad, np.arange(len(bad)), -1))
        instruments[name] = InstrumentArrays(
            instrument=name,
            values=values,
            stamps_ns=part["_ns"].to_numpy().astype(np.int64),
            features=time_features(part["timestamp"].to_pandas()),
            last_bad=last_bad,
        )
    union = np.unique(frame["_ns"].to_numpy()).astype(np.int64)
    return PanelArrays(instruments, union, ts_dtype.time_zone, ts_dtype.time_unit or "us", calendar)


def _is_date_only(value: Any) -> bool:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return True
    return isinstance(value, str) and len(value.strip()) <= 10 and ":" not in value


def _to_ns(value: Any, time_zone: str | None, *, whole_day: bool = False) -> int:
    """UTC ns of a date/time given in the panel's wall-clock time; with ``whole_day``, a date
    without a time of day (``datetime.date`` or ``"2024-02-09"``) means the end of that day."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot interpret {value!r} as a date or timestamp") from exc
    if ts is pd.NaT:
        raise ValueError(f"cannot interpret {value!r} as a date or timestamp")
    if whole_day and _is_date_only(value):
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    if time_zone is not None:
        ts = ts.tz_localize(time_zone) if ts.tzinfo is None else ts
        ts = ts.tz_convert("UTC").tz_localize(None)
    elif ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return int(ts.as_unit("ns").value)


def _rebalance_grid(
    data: PanelArrays, rebalance: int | Sequence[Any], min_history: int, start: Any, end: Any
) -> np.ndarray:
    """Sorted UTC-ns as-of dates on the union calendar."""
    cal = data.calendar_ns
    lo = _to_ns(start, data.time_zone) if start is not None else None
    hi = _to_ns(end, data.time_zone, whole_day=True) if end is not None else None
    if isinstance(rebalance, (int, np.integer)) and not isinstance(rebalance, bool):
        k = int(rebalance)
        if k < 1:
            raise ValueError(f"rebalance must be >= 1 bars or a sequence of dates, got {k}")
        if lo is None:
            # Anchor at the first date on which some instrument has min_history bars, so that the
            # grid does not move when the end of the data grows (nightly runs reuse the cache).
            firsts = [
                a.stamps_ns[min_history - 1]
                for a in data.instruments.values()
                if len(a.stamps_ns) >= min_history
            ]
            if not firsts:
                return np.empty(0, dtype=np.int64)
            lo = int(min(firsts))
        grid = cal[cal >= lo][::k]
    else:
        if isinstance(rebalance, (str, bytes)):
            raise ValueError("rebalance must be an int (every k bars) or a sequence of dates, got a string")
        wanted = np.array([_to_ns(d, data.time_zone, whole_day=True) for d in rebalance], dtype=np.int64)
        pos = np.searchsorted(cal, wanted, side="right") - 1  # last calendar bar <= date
        if (pos < 0).any():
            logger.warning("%d rebalance date(s) precede the data and are skipped", int((pos < 0).sum()))
        grid = np.unique(cal[pos[pos >= 0]])
        if lo is not None:
            grid = grid[grid >= lo]
    if hi is not None:
        grid = grid[grid <= hi]
    return grid


def plan_windows(
    data: PanelArrays | pl.DataFrame,
    *,
    lookback: int,
    rebalance: int | Sequence[Any] = 1,
    min_history: int | None = None,
    start: Any = None,
    end: Any = None,
) -> list[WorkItem]:
    """The (instrument, as-of) work items of a rolling run, ordered by (as-of, instrument).

    As-of dates form a grid on the union calendar of all instruments: every ``rebalance`` bars
    from ``start`` (or from the first date any instrument has ``min_history`` bars), or the
    explicit dates given (each mapped to the last calendar bar on or before it; a date without a
    time of day means the end of that day), within [start, end] (a date-only ``end`` includes
    the whole day). An instrument gets an item at a grid date when it has a bar exactly there
    whose values are finite; its window is the last ``lookback`` bars up to and including that
    bar, cut after the latest bar with a missing/non-finite value, and kept only if it still
    holds at least ``min_history`` (default ``lookback``) bars.
    """
    if not isinstance(data, PanelArrays):
        data = prepare_panel(data)
    if lookback < 1:
        raise ValueError(f"lookback must be >= 1, got {lookback}")
    min_history = lookback if min_history is None else int(min_history)
    if not 1 <= min_history <= lookback:
        raise ValueError(f"min_history must lie in [1, lookback={lookback}], got {min_history}")
    grid = _rebalance_grid(data, rebalance, min_history, start, end)
    items: list[WorkItem] = []
    for name, arr in data.instruments.items():
        pos = np.searchsorted(arr.stamps_ns, grid)
        ok = pos < len(arr.stamps_ns)
        ok[ok] = arr.stamps_ns[pos[ok]] == grid[ok]  # the instrument has a bar exactly at the grid date
        pos = pos[ok]
        for t in pos.tolist():
            first = max(t - lookback + 1, int(arr.last_bad[t]) + 1)
            if t - first + 1 >= min_history:
                items.append(WorkItem(name, int(arr.stamps_ns[t]), first, t))
    items.sort(key=lambda it: (it.asof_ns, it.instrument))
    return items


def _local_index(ns: np.ndarray, time_zone: str | None) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(pd.to_datetime(ns, unit="ns"))
    return idx.tz_localize("UTC").tz_convert(time_zone) if time_zone is not None else idx


def _calendar_future(data: PanelArrays, arr: InstrumentArrays, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n,) UTC ns and (n, 5) features of the bars after the instrument's last bar.

    They follow the panel's bar calendar (one calendar is assumed for all instruments, so an
    instrument that stopped trading early is extended on the same schedule as the others).
    """
    last_ns = int(arr.stamps_ns[-1])
    cached = data._futures.get(last_ns)  # instruments ending on the same bar share their future
    if cached is not None and len(cached[0]) >= n:
        return cached[0][:n], cached[1][:n]
    last = _local_index(arr.stamps_ns[-1:], data.time_zone)
    future = pd.DatetimeIndex(future_timestamps(last, n, calendar=data.bar_calendar()))
    features = time_features(future)
    utc = future.tz_convert("UTC").tz_localize(None) if future.tz is not None else future
    ns = np.asarray(utc.as_unit("ns").asi8, dtype=np.int64)
    data._futures[last_ns] = (ns, features)
    return ns, features


def build_windows(
    data: PanelArrays, items: Sequence[WorkItem], *, horizon: int, base_seed: int
) -> list[Window]:
    """Cut the input window and target timestamps of each item (arrays are views, not copies).

    Target timestamps are the instrument's own next ``horizon`` bar timestamps where they exist;
    beyond its last bar they follow the panel's bar calendar (``data.calendar.future_timestamps``).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
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
                seed=series_seed(base_seed, it.instrument, it.asof_ns),
            )
        )
    return windows
