"""Issue 12 item 7: no forecast window bridges a history break (a gap longer than max_gap_bars).

A tiny panel where instrument X has a 380-bar hole (Y trades throughout, so the union calendar
keeps every weekday). Closes encode the row number, so every window a forecaster receives tells
which bars it holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from kronos_quant.baselines import RandomWalkForecaster
from kronos_quant.data import validate_panel
from kronos_quant.data.arrays import panel_arrays
from kronos_quant.engine import RollingSpec, plan_rolling, plan_windows, run_rolling
from kronos_quant.schema import CLOSE_INDEX
from tests.conftest import panel_from_prices

WEEKDAYS = pd.bdate_range("2015-01-01", periods=520)
BEFORE, AFTER = 60, 80  # X: rows 0..59 before the hole, rows 60..139 after it
HOLE = 380


def _panel(tz: str | None = None) -> pl.DataFrame:
    x_days = list(WEEKDAYS[:BEFORE]) + list(WEEKDAYS[BEFORE + HOLE:BEFORE + HOLE + AFTER])
    x = panel_from_prices({"X": [100.0 + i for i in range(BEFORE + AFTER)]}, stamps=x_days)
    y = panel_from_prices({"Y": [50.0 + 0.01 * i for i in range(len(WEEKDAYS))]}, stamps=list(WEEKDAYS))
    panel = pl.concat([x, y]).sort("instrument", "timestamp")
    if tz is not None:
        panel = panel.with_columns(pl.col("timestamp").dt.replace_time_zone(tz))
    return panel


class _Recording(RandomWalkForecaster):
    """A random walk that keeps the close column of every window it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.closes: list[np.ndarray] = []

    def forecast_arrays(self, series, past_stamps, future_stamps, **kwargs):  # type: ignore[no-untyped-def]
        self.closes += [np.asarray(s[:, CLOSE_INDEX]) for s in series]
        return super().forecast_arrays(series, past_stamps, future_stamps, **kwargs)


SPEC = RollingSpec(lookback=30, horizon=3, rebalance=1, min_history=20)


@pytest.mark.parametrize("tz", [None, "America/New_York"])
def test_no_window_bridges_the_380_bar_hole(tz):
    panel, report = validate_panel(_panel(tz), policy="drop")
    assert [(b.instrument, b.missing_bars) for b in report.breaks] == [("X", HOLE)]
    data = panel_arrays(panel, breaks=report.segment_starts())
    assert data.instruments["X"].segment_start.tolist() == [0] * BEFORE + [BEFORE] * AFTER
    plan = plan_rolling(data, SPEC)
    x_items = [it for it in plan.items if it.instrument == "X"]
    # neither the look-back nor the forecast bars reach across the hole
    assert x_items and all(it.end + SPEC.horizon < BEFORE or it.start >= BEFORE for it in x_items)
    ends = [it.end for it in x_items]
    assert ends == list(range(19, BEFORE - SPEC.horizon)) + list(range(BEFORE + 19, BEFORE + AFTER))
    # after the break, windows start fresh and need min_history bars again
    assert [it.start for it in x_items if it.end >= BEFORE][:3] == [BEFORE] * 3
    # skipped: 3 whose targets lie after the hole, 19 too short once cut; cut: 10 (rows 79..88)
    # (the schedule starts where the first instrument has min_history bars: nothing short before that)
    assert plan.counts() == {"windows": len(plan.items), "cut_at_breaks": 10, "skipped_at_breaks": 3 + 19,
                             "skipped_short": 0}
    assert plan.unplanned == {}
    # without the breaks (what happened before) windows bridge the hole: the check above can fail
    bridged = [it for it in plan_windows(panel_arrays(panel), SPEC) if it.instrument == "X"
               and it.start < BEFORE <= it.end + SPEC.horizon]
    assert len(bridged) == 3 + 19 + 10

    forecaster = _Recording()
    table = run_rolling(SPEC, data, forecaster, plan=plan)
    x_windows = [c for c in forecaster.closes if c.min() >= 100.0]  # Y's closes are about 50
    assert len(x_windows) == len(x_items)
    assert all(c.max() < 100 + BEFORE or c.min() >= 100 + BEFORE for c in x_windows)
    x = table.filter(pl.col("instrument") == "X")
    first_after = pd.Timestamp(WEEKDAYS[BEFORE + HOLE])
    if tz is not None:
        first_after = first_after.tz_localize(tz)
    sides = x.group_by("asof").agg((pl.col("target_timestamp") >= first_after).n_unique().alias("sides"))
    assert sides["sides"].max() == 1  # every forecast's target bars lie on one side of the hole


def test_an_instrument_whose_every_window_meets_a_break_is_explained():
    short_after = _panel().filter((pl.col("instrument") != "X") | (pl.col("close") < 100 + BEFORE + 10))
    panel, report = validate_panel(short_after, policy="drop")
    plan = plan_rolling(panel_arrays(panel, breaks=report.segment_starts()),
                        RollingSpec(lookback=30, horizon=3, rebalance=1, min_history=20, start=WEEKDAYS[BEFORE + HOLE]))
    assert "X" in plan.unplanned and "history break" in plan.unplanned["X"]
    plan = plan_rolling(panel, RollingSpec(lookback=30, horizon=3, rebalance=1, min_history=20,
                                           start=WEEKDAYS[BEFORE + 5], end=WEEKDAYS[BEFORE + 100]))
    last = WEEKDAYS[BEFORE + HOLE + 9].date()
    assert plan.unplanned == {"X": f"no bars in the forecast period (its bars run from 2015-01-01 to {last})"}


def test_a_backtest_on_a_file_with_a_hole_forecasts_no_window_across_it(tmp_path):
    from kronos_quant.config import load_config
    from kronos_quant.workflow import run_backtest

    _panel().write_csv(tmp_path / "prices.csv")
    cfg = load_config(None, overrides=[
        "data.source=file", f"data.path={tmp_path / 'prices.csv'}", "data.validation=drop", "name=hole",
        "model.id=baseline:random_walk", "forecast.lookback=30", "forecast.horizon=3", "forecast.rebalance=1",
        "forecast.samples=4", "universe.min_history=20", f"forecast.cache_dir={tmp_path / 'cache'}",
        f"output.dir={tmp_path / 'run'}", "output.figures=false", "portfolio.params={k: 1}"])
    run = run_backtest(cfg, quiet=True)
    assert run.provenance["forecast_stats"]["plan"] == {"windows": run.provenance["forecast_stats"]["forecasts"],
                                                        "cut_at_breaks": 10, "skipped_at_breaks": 22, "skipped_short": 0}
    assert run.provenance["validation"]["breaks"][0]["missing_bars"] == HOLE
    x = run.forecasts.filter(pl.col("instrument") == "X")
    first_after = pd.Timestamp(WEEKDAYS[BEFORE + HOLE])
    assert x.filter((pl.col("asof") < first_after) & (pl.col("target_timestamp") >= first_after)).height == 0
    after = x.filter(pl.col("asof") >= first_after)["asof"].min()
    assert after == pd.Timestamp(WEEKDAYS[BEFORE + HOLE + 19])  # min_history bars after the hole
