"""Panel -> per-instrument arrays: the one conversion used by forecasting and training.

``panel_arrays(panel)`` checks a long panel (``schema.PANEL_COLUMNS``) and splits it, once, into
numpy arrays per instrument: values (T, 6) in FIELDS order, UTC-nanosecond timestamps, the
time features of the wall-clock timestamps, and ``last_bad`` (where the latest missing value
lies). pandas is used only to compute time features and calendars.

One behaviour for every consumer:

* duplicate (instrument, timestamp) rows are an error (DataError naming one of them and the fix);
* rows with a missing or non-finite value are KEPT (as NaN) and cut windows: a window of rows
  ``a..b`` of an instrument is usable only when ``a >= first_clean(b)``, i.e. it holds no bad
  row. The rolling engine's plans and the training windows both follow this rule.
* history breaks cut windows the same way: given ``breaks`` (instrument -> the first bar after
  each gap longer than the validation limit, ``ValidationReport.segment_starts()``), an
  instrument's rows form segments, and ``first_clean(b)`` never lies before the start of row
  b's segment, so no window bridges a break. Which gaps are breaks is the validation's call;
  this module only applies the cuts it is given.

Knows nothing about models, forecasts or training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from kronos_quant.data.bounds import bound_ns
from kronos_quant.data.calendar import BarCalendar, infer_frequency
from kronos_quant.data.timefeatures import time_features
from kronos_quant.errors import DataError
from kronos_quant.schema import FIELDS

__all__ = ["InstrumentArrays", "PanelArrays", "panel_arrays", "local_index"]


@dataclass
class InstrumentArrays:
    """One instrument's bars, sorted by time. values: (T, 6) float64 in FIELDS order (NaN where
    missing); stamps_ns: (T,) int64 UTC ns; features: (T, 5) int64 time features of the
    wall-clock timestamps; last_bad: (T,) index of the latest row <= t holding a missing or
    non-finite value (-1 if none); segment_start: (T,) the first row of the segment holding row t
    (0 everywhere when the history has no breaks)."""

    instrument: str
    values: np.ndarray
    stamps_ns: np.ndarray
    features: np.ndarray
    last_bad: np.ndarray
    segment_start: np.ndarray

    def first_clean(self, end: int | np.ndarray) -> int | np.ndarray:
        """The earliest row a window ending at row ``end`` may start at (it must hold no bad row
        and lie in one segment)."""
        return np.maximum(self.last_bad[end] + 1, self.segment_start[end])

    def crosses_break(self, end: int | np.ndarray, ahead: int) -> bool | np.ndarray:
        """Whether the next ``ahead`` rows after row ``end`` (those the instrument has) reach into a
        later segment, i.e. a forecast as of ``end`` would be scored across a history break."""
        last = np.minimum(np.asarray(end) + ahead, len(self.stamps_ns) - 1)
        return self.segment_start[last] != self.segment_start[end]

    def clean_starts(self, length: int) -> np.ndarray:
        """(N,) every start row of a window of ``length`` consecutive rows holding no bad row and no break."""
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        starts = np.arange(len(self.stamps_ns) - length + 1)
        return starts[starts >= self.first_clean(starts + length - 1)]


@dataclass
class PanelArrays:
    """The panel as arrays: instruments by name (sorted), the union calendar (sorted unique UTC
    ns) and the time zone / unit of the original timestamp column (to convert results back)."""

    instruments: dict[str, InstrumentArrays]
    calendar_ns: np.ndarray
    time_zone: str | None
    time_unit: str
    _bar_calendar: BarCalendar | None = field(default=None, repr=False)
    _futures: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def bar_calendar(self) -> BarCalendar:
        """The panel's bar calendar (given, or inferred once from the latest union timestamps)."""
        if self._bar_calendar is None:
            self._bar_calendar = infer_frequency(local_index(self.calendar_ns[-5000:], self.time_zone))
        return self._bar_calendar

    def local_times(self, name: str) -> np.ndarray:
        """(T,) datetime64[us] wall-clock timestamps of instrument ``name`` (naive, in the panel's zone)."""
        idx = local_index(self.instruments[name].stamps_ns, self.time_zone)
        return np.asarray(idx.tz_localize(None) if idx.tz is not None else idx, dtype="datetime64[us]")


def local_index(ns: np.ndarray, time_zone: str | None) -> pd.DatetimeIndex:
    """UTC nanoseconds -> DatetimeIndex in ``time_zone`` (naive when None)."""
    idx = pd.DatetimeIndex(pd.to_datetime(ns, unit="ns"))
    return idx.tz_localize("UTC").tz_convert(time_zone) if time_zone is not None else idx


def _utc_ns_expr(dtype: pl.DataType) -> pl.Expr:
    col = pl.col("timestamp")
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return col.dt.cast_time_unit("ns").cast(pl.Int64)


def _check_columns(panel: Any) -> pl.DataFrame:
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
    if panel.schema["timestamp"] == pl.Date:
        panel = panel.with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    ts_dtype = panel.schema["timestamp"]
    if not isinstance(ts_dtype, pl.Datetime):
        raise DataError(f"panel column 'timestamp' must be Date or Datetime, got {ts_dtype}; parse it first")
    return panel


def _segment_start(stamps_ns: np.ndarray, starts: Sequence[Any], time_zone: str | None) -> np.ndarray:
    """(T,) the first row of the segment of each row, given the segments' first bars ``starts``."""
    seg = np.zeros(len(stamps_ns), dtype=np.int64)
    for start in starts:  # a start is a bar of the instrument; otherwise its next bar begins the segment
        ns = bound_ns(start, tz=time_zone, is_end=False, name="history break")
        row = int(np.searchsorted(stamps_ns, ns, side="left"))
        if 0 < row < len(stamps_ns):
            seg[row] = row
    return np.maximum.accumulate(seg)


def panel_arrays(panel: pl.DataFrame | Any, *, calendar: BarCalendar | None = None,
                 breaks: Mapping[str, Sequence[Any]] | None = None) -> PanelArrays:
    """Check a panel (see ``schema.PANEL_COLUMNS``; pandas frames are converted) and split it into
    per-instrument arrays (see the module docstring for duplicates, missing values and breaks).

    calendar: the bar calendar used to extend timestamps past the last bar (default: inferred
    from the panel's timestamps when first needed). breaks: instrument -> the first bars of new
    segments (datetimes in the panel's time zone, e.g. ``ValidationReport.segment_starts()``);
    windows never span one (default: no breaks).
    """
    panel = _check_columns(panel)
    ts_dtype = panel.schema["timestamp"]
    assert isinstance(ts_dtype, pl.Datetime)
    frame = panel.select(
        pl.col("instrument").cast(pl.Utf8),
        pl.col("timestamp"),
        _utc_ns_expr(ts_dtype).alias("_ns"),
        *[pl.col(f).cast(pl.Float64) for f in FIELDS],
    ).sort("instrument", "_ns")
    if frame["instrument"].null_count() or frame["_ns"].null_count():
        raise DataError("panel has null instrument or timestamp values; drop those rows first")
    dup = frame.filter(pl.struct("instrument", "_ns").is_duplicated())
    if dup.height:
        raise DataError(
            f"panel has {dup.height} rows sharing an (instrument, timestamp), e.g. {dup['instrument'][0]} at "
            f"{dup['timestamp'][0]}; deduplicate it first (validate_panel(panel, policy='drop') keeps the last)"
        )
    instruments: dict[str, InstrumentArrays] = {}
    for part in frame.partition_by("instrument", maintain_order=True):
        name = str(part["instrument"][0])
        values = np.ascontiguousarray(part.select(FIELDS).to_numpy().astype(np.float64, copy=False))
        bad = ~np.isfinite(values).all(axis=1)
        stamps_ns = part["_ns"].to_numpy().astype(np.int64)
        instruments[name] = InstrumentArrays(
            instrument=name,
            values=values,
            stamps_ns=stamps_ns,
            features=time_features(part["timestamp"].to_pandas()),
            last_bad=np.maximum.accumulate(np.where(bad, np.arange(len(bad)), -1)),
            segment_start=_segment_start(stamps_ns, (breaks or {}).get(name, ()), ts_dtype.time_zone),
        )
    union = np.unique(frame["_ns"].to_numpy()).astype(np.int64)
    return PanelArrays(instruments, union, ts_dtype.time_zone, ts_dtype.time_unit or "us", calendar)
