"""The data layer's shared helpers: panel -> arrays (one duplicate/NaN rule) and date bounds (one reading)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest

from kronos_quant.data import load_panel
from kronos_quant.data.arrays import panel_arrays
from kronos_quant.data.bounds import bound_ns, parse_bound
from kronos_quant.engine import RollingSpec, plan_windows
from kronos_quant.errors import DataError
from kronos_quant.schema import FIELDS
from kronos_quant.training.windows import series_from_panel, training_windows


def _panel(n: int = 12, *, freq: str = "B", start: str = "2024-01-01", tz: str | None = None,
           names: tuple[str, ...] = ("A", "B")) -> pl.DataFrame:
    ts = pd.date_range(start, periods=n, freq=freq, tz=tz)
    frames = []
    for k, name in enumerate(names):
        close = 10.0 * (k + 1) + np.arange(n, dtype=float)
        frames.append(pl.DataFrame({"instrument": name, "timestamp": pl.Series(ts), "open": close, "high": close + 1,
                                    "low": close - 1, "close": close, "volume": 100.0 + np.arange(n),
                                    "amount": 1000.0 + np.arange(n)}))
    return pl.concat(frames)


def _with_nan(panel: pl.DataFrame, instrument: str, row: int, column: str = "close") -> pl.DataFrame:
    hit = (pl.col("instrument") == instrument) & (pl.int_range(pl.len()).over("instrument") == row)
    return panel.with_columns(pl.when(hit).then(None).otherwise(pl.col(column)).alias(column))


def test_arrays_hold_the_panel_sorted_per_instrument():
    panel = _panel(6).sample(fraction=1.0, shuffle=True, seed=1)
    data = panel_arrays(panel)
    assert list(data.instruments) == ["A", "B"]
    a = data.instruments["A"]
    expected = panel.filter(pl.col("instrument") == "A").sort("timestamp")
    np.testing.assert_array_equal(a.values, expected.select(FIELDS).to_numpy())
    np.testing.assert_array_equal(a.stamps_ns, expected["timestamp"].dt.epoch("ns").to_numpy())
    assert a.features.shape == (6, 5) and (a.last_bad == -1).all()
    assert data.calendar_ns.tolist() == sorted(set(a.stamps_ns.tolist()))
    assert data.local_times("A")[0] == np.datetime64("2024-01-01")


def test_duplicates_are_an_error_naming_the_row_and_the_fix():
    panel = _panel(5)
    with pytest.raises(DataError, match=r"A at 2024-01-03.*validate_panel"):
        panel_arrays(pl.concat([panel, panel.slice(2, 1)]))
    with pytest.raises(DataError, match="rows sharing an"):
        series_from_panel(pl.concat([panel, panel.slice(2, 1)]))  # training: the same rule, not keep-first


def test_a_missing_value_is_kept_and_cuts_windows_for_engine_and_training():
    panel = _with_nan(_panel(12), "A", 5)
    a = panel_arrays(panel).instruments["A"]
    assert np.isnan(a.values[5, 3]) and a.last_bad.tolist() == [-1] * 5 + [5] * 7
    assert a.first_clean(4) == 0 and a.first_clean(9) == 6
    starts = a.clean_starts(3)
    assert starts.tolist() == [0, 1, 2, 6, 7, 8, 9]  # no window of 3 rows holds row 5
    # the engine: windows end at or after the bad bar only once they hold min_history clean bars
    items = [it for it in plan_windows(panel, RollingSpec(lookback=4, horizon=1, min_history=2))
             if it.instrument == "A"]
    assert all(it.start > 5 or it.end < 5 for it in items) and [it.end for it in items] == [1, 2, 3, 4, 7, 8, 9, 10, 11]
    # training: the same cut, no window holds row 5 (it used to drop the row and join its neighbours)
    series = series_from_panel(panel)
    index = training_windows(series, length=3, start=None, end=None)
    rows_a = index.start[index.series == series.names.index("A")]
    assert rows_a.tolist() == starts.tolist()
    windows = [series.values[s][t:t + 3] for s, t in zip(index.series, index.start)]
    assert all(np.isfinite(w).all() for w in windows)


def test_date_only_end_means_the_whole_day_everywhere():
    assert parse_bound("2024-01-02", tz=None, is_end=True) == pd.Timestamp("2024-01-02 23:59:59.999999")
    assert parse_bound(dt.date(2024, 1, 2), tz=None, is_end=False) == pd.Timestamp("2024-01-02")
    assert parse_bound("2024-01-02 12:00", tz=None, is_end=True) == pd.Timestamp("2024-01-02 12:00")
    ny = parse_bound("2024-01-02", tz="America/New_York", is_end=False)
    assert ny == pd.Timestamp("2024-01-02", tz="America/New_York")
    assert bound_ns("2024-01-02", tz="America/New_York", is_end=False) == pd.Timestamp("2024-01-02 05:00").value
    assert parse_bound(None, tz=None, is_end=True) is None
    with pytest.raises(DataError, match="end='soon'"):
        parse_bound("soon", tz=None, is_end=True)
    # one reading for the loader's filter and the engine's schedule: the last bar of Jan 2 is kept by both
    intraday = _panel(30, freq="30min", start="2024-01-02 09:30", names=("X",))
    loaded = load_panel(intraday.to_pandas(), end="2024-01-02")
    items = plan_windows(intraday, RollingSpec(lookback=2, horizon=1, end="2024-01-02"))
    last = loaded["timestamp"].max()
    assert last.date() == dt.date(2024, 1, 2) and last.hour == 23
    assert pd.Timestamp(items[-1].asof_ns) == pd.Timestamp(last)
