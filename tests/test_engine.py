"""Rolling forecast engine: windows, schedules, no look-ahead, live targets, determinism, known answers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from scipy.stats import spearmanr

from kronos_quant.baselines import LinearForecaster, RandomWalkForecaster
from kronos_quant.data.arrays import panel_arrays
from kronos_quant.data.calendar import BarCalendar
from kronos_quant.data.synthetic import synthetic_market
from kronos_quant.data.timefeatures import time_features
from kronos_quant.engine import (
    ForecastCache,
    RollingSpec,
    build_windows,
    finalize_table,
    forecast_batch,
    forecast_columns,
    make_batches,
    plan_windows,
    rolling_forecast,
    run_rolling,
)
from kronos_quant.errors import DataError
from kronos_quant.schema import FIELDS, SamplingSpec
from tests.conftest import make_panel

SPEC = SamplingSpec(samples=4, seed=7)


class Recorder:
    """Wraps a forecaster and records every call's inputs."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[dict] = []

    @property
    def identity(self):
        return self.inner.identity

    def forecast_arrays(self, series, past_stamps, future_stamps, **kw):
        self.calls.append(
            {"series": [np.array(s) for s in series], "past": list(past_stamps), "future": list(future_stamps)}
        )
        return self.inner.forecast_arrays(series, past_stamps, future_stamps, **kw)


def asofs(table: pl.DataFrame, name: str) -> list:
    return table.filter(pl.col("instrument") == name)["asof"].unique().sort().to_list()


def test_table_schema_rows_and_targets():
    panel = make_panel({"A": (0, 30), "B": (0, 30)}, n_days=30)
    table = rolling_forecast(panel, RandomWalkForecaster(), lookback=10, horizon=3, sampling=SPEC)
    assert table.columns == forecast_columns(keep_samples=False)
    assert table.schema["asof"] == pl.Datetime("us") and table.schema["target_timestamp"] == pl.Datetime("us")
    assert table.height == 2 * 21 * 3  # as-of bars 10..30 of each instrument, 3 steps each
    assert table["step"].to_list()[:6] == [1, 2, 3, 1, 2, 3]
    assert table.equals(table.sort("instrument", "asof", "step"))
    joined = table.join(panel.select("instrument", "timestamp", "close"), left_on=["instrument", "asof"],
                        right_on=["instrument", "timestamp"])
    np.testing.assert_array_equal(joined["last_close"], joined["close"])
    # in-sample targets are the data's own next bars
    ts = panel.filter(pl.col("instrument") == "A")["timestamp"].to_list()
    row = table.filter((pl.col("instrument") == "A") & (pl.col("asof") == ts[12]))
    assert row["target_timestamp"].to_list() == ts[13:16]
    q = table["close_q5"] <= table["close_median"]
    assert q.all() and (table["close_median"] <= table["close_q95"]).all()
    assert table["prob_up"].is_between(0, 1).all()


def test_windows_hold_exactly_the_bars_up_to_asof():
    panel = make_panel({"A": (0, 25), "B": (5, 25)}, n_days=25)
    rec = Recorder(RandomWalkForecaster())
    rolling_forecast(panel, rec, lookback=8, horizon=2, min_history=4, rebalance=3, sampling=SPEC,
                     batch_series=1000)
    seen = 0
    by_inst = {n: g for (n,), g in panel.partition_by("instrument", as_dict=True).items()}
    for call in rec.calls:
        for series, past, future in zip(call["series"], call["past"], call["future"]):
            # find the instrument/as-of whose last bars match this window exactly
            matches = []
            for name, g in by_inst.items():
                values = g.select(FIELDS).to_numpy()
                for t in range(len(values)):
                    lo = max(0, t - 8 + 1)
                    if t - lo + 1 == len(series) and np.array_equal(values[lo : t + 1], series):
                        matches.append((name, lo, t))
            assert len(matches) == 1
            name, lo, t = matches[0]
            stamps = by_inst[name]["timestamp"]
            np.testing.assert_array_equal(past, time_features(stamps[lo : t + 1]))
            cal = pd.bdate_range("2024-01-01", periods=40) + pd.Timedelta(hours=16)
            k = cal.get_loc(pd.Timestamp(stamps[t]))
            np.testing.assert_array_equal(future, time_features(cal[k + 1 : k + 3]))
            seen += 1
    assert seen > 10


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_inst=st.integers(1, 3),
    lookback=st.integers(4, 12),
    cut_frac=st.floats(0.1, 0.95),
    kind=st.sampled_from(["random_walk", "linear"]),
    nan_future=st.booleans(),
)
def test_no_lookahead_changing_later_bars_leaves_forecast_unchanged(seed, n_inst, lookback, cut_frac, kind, nan_future):
    rng = np.random.default_rng(seed)
    spans = {f"I{i}": (int(rng.integers(0, 8)), int(rng.integers(16, 28))) for i in range(n_inst)}
    panel = make_panel(spans, n_days=28, seed=seed)
    stamps = panel["timestamp"].unique().sort()
    cut = stamps[int(cut_frac * (len(stamps) - 1))]
    later = pl.col("timestamp") > cut
    noise = pl.Series(np.exp(rng.normal(0, 0.05, panel.height)))
    perturbed = panel.with_columns(
        [pl.when(later).then(pl.col(f) * noise).otherwise(pl.col(f)).alias(f) for f in FIELDS]
    )
    if nan_future:
        perturbed = perturbed.with_columns(pl.when(later).then(float("nan")).otherwise(pl.col("close")).alias("close"))
    forecaster = RandomWalkForecaster() if kind == "random_walk" else LinearForecaster(n_lags=2, min_train_rows=4)
    kwargs = dict(lookback=lookback, horizon=3, min_history=max(2, lookback // 2), sampling=SPEC)
    before = rolling_forecast(panel, forecaster, **kwargs).filter(pl.col("asof") <= cut)
    after = rolling_forecast(perturbed, forecaster, **kwargs).filter(pl.col("asof") <= cut)
    assert_frame_equal(before, after)
    if kind == "linear" and before.height:
        full = rolling_forecast(perturbed, forecaster, **kwargs)
        assert full.height >= before.height


def test_rebalance_every_k_bars_and_bounds():
    panel = make_panel({"A": (0, 40), "B": (10, 40)}, n_days=40)
    cal = panel["timestamp"].unique().sort().to_list()
    table = rolling_forecast(panel, RandomWalkForecaster(), lookback=10, horizon=1, rebalance=5, sampling=SPEC)
    assert asofs(table, "A") == cal[9::5]  # anchored at the first date any instrument has lookback bars
    assert asofs(table, "B") == [d for d in cal[9::5] if d >= cal[19]]  # same grid, B once it has 10 bars
    bounded = rolling_forecast(panel, RandomWalkForecaster(), lookback=10, horizon=1, rebalance=5,
                               start=cal[12], end=cal[30], sampling=SPEC)
    assert asofs(bounded, "A") == cal[12:31:5]
    # the every-k grid does not move when more data arrives (so nightly reruns hit the cache)
    shorter = rolling_forecast(panel.filter(pl.col("timestamp") <= cal[27]), RandomWalkForecaster(), lookback=10,
                               horizon=1, rebalance=5, sampling=SPEC)
    assert asofs(shorter, "A") == [d for d in cal[9::5] if d <= cal[27]]
    with pytest.raises(ValueError, match="rebalance"):
        RollingSpec(lookback=10, horizon=1, rebalance=0)


def test_rebalance_explicit_dates():
    panel = make_panel({"A": (0, 30), "B": (0, 30)}, n_days=30)
    cal = panel["timestamp"].unique().sort().to_list()
    saturday = dt.date(2024, 1, 27)  # -> Friday 2024-01-26 16:00, the last bar on or before it
    dates = [cal[15], "2023-06-01", saturday, cal[15], cal[29]]
    table = rolling_forecast(panel, RandomWalkForecaster(), lookback=10, horizon=2, rebalance=dates, sampling=SPEC)
    assert asofs(table, "A") == sorted({cal[15], dt.datetime(2024, 1, 26, 16), cal[29]})
    assert asofs(table, "B") == asofs(table, "A")


def test_min_history_and_ragged_histories():
    panel = make_panel({"OLD": (0, 30), "NEW": (18, 30), "TINY": (26, 30)}, n_days=30)
    cal = panel["timestamp"].unique().sort().to_list()
    items = plan_windows(panel, RollingSpec(lookback=10, horizon=2, min_history=5))
    by = {}
    for it in items:
        by.setdefault(it.instrument, []).append(it)
    assert "TINY" not in by  # 4 bars < min_history
    assert by["NEW"][0].length == 5 and by["NEW"][0].asof_ns == pd.Timestamp(cal[22]).value
    assert [it.length for it in by["NEW"]] == [5, 6, 7, 8, 9, 10, 10, 10]
    assert by["OLD"][0].length == 5 and max(it.length for it in by["OLD"]) == 10
    table = rolling_forecast(panel, RandomWalkForecaster(), lookback=10, horizon=2, min_history=5, sampling=SPEC)
    assert asofs(table, "NEW")[0] == cal[22] and set(table["instrument"]) == {"OLD", "NEW"}
    default = plan_windows(panel, RollingSpec(lookback=10, horizon=2))  # min_history defaults to lookback
    assert min(it.length for it in default) == 10
    with pytest.raises(ValueError, match="min_history"):
        RollingSpec(lookback=10, horizon=2, min_history=11)


def test_missing_value_cuts_the_window():
    panel = make_panel({"A": (0, 30)}, n_days=30)
    panel = panel.with_columns(
        pl.when(pl.int_range(pl.len()) == 12).then(None).otherwise(pl.col("volume")).alias("volume")
    )
    plan = plan_windows(panel, RollingSpec(lookback=8, horizon=1, min_history=3))
    items = {pd.Timestamp(it.asof_ns).value: it for it in plan}
    stamps = [pd.Timestamp(t).value for t in panel["timestamp"].to_list()]
    assert stamps[12] not in items  # the bad bar itself is not an as-of
    assert stamps[13] not in items and stamps[14] not in items  # 1 and 2 clean bars < min_history
    assert items[stamps[15]].start == 13 and items[stamps[15]].length == 3
    assert items[stamps[25]].length == 8
    assert items[stamps[11]].length == 8


def test_live_asof_uses_calendar_for_target_timestamps():
    # 2024-01-01 is a Monday; 30 business days end on Friday 2024-02-09; "GONE" stops on Wednesday 02-07
    panel = make_panel({"A": (0, 30), "GONE": (0, 28)}, n_days=30)
    table = rolling_forecast(panel, RandomWalkForecaster(), lookback=10, horizon=3, sampling=SPEC)
    last = table.filter(pl.col("instrument") == "A").filter(pl.col("asof") == pl.col("asof").max())
    assert last["asof"][0] == dt.datetime(2024, 2, 9, 16)
    assert last["target_timestamp"].to_list() == [dt.datetime(2024, 2, d, 16) for d in (12, 13, 14)]
    one_before = table.filter((pl.col("instrument") == "A") & (pl.col("asof") == dt.datetime(2024, 2, 8, 16)))
    assert one_before["target_timestamp"].to_list() == [dt.datetime(2024, 2, d, 16) for d in (9, 12, 13)]
    gone = table.filter(pl.col("instrument") == "GONE").filter(pl.col("asof") == pl.col("asof").max())
    assert gone["asof"][0] == dt.datetime(2024, 2, 7, 16)
    assert gone["target_timestamp"].to_list() == [dt.datetime(2024, 2, d, 16) for d in (8, 9, 12)]
    # an explicit calendar with a holiday on Monday 2024-02-12
    cal = BarCalendar.daily(time_of_day="16:00", holidays=[dt.date(2024, 2, 12)])
    live = rolling_forecast(panel, RandomWalkForecaster(), lookback=10, horizon=3, sampling=SPEC,
                            rebalance=["2024-02-09"], calendar=cal).filter(pl.col("instrument") == "A")
    assert live["target_timestamp"].to_list() == [dt.datetime(2024, 2, d, 16) for d in (13, 14, 15)]


def test_time_zone_is_kept_and_features_are_wall_clock():
    panel = make_panel({"A": (0, 20)}, n_days=20, tz="America/New_York")
    rec = Recorder(RandomWalkForecaster())
    table = rolling_forecast(panel, rec, lookback=10, horizon=2, sampling=SPEC)
    assert table.schema["asof"] == pl.Datetime("us", "America/New_York")
    assert table["asof"].dt.hour().unique().to_list() == [16]
    assert table["target_timestamp"].dt.hour().unique().to_list() == [16]
    for call in rec.calls:
        assert all((p[:, 1] == 16).all() for p in call["past"])
        assert all((f[:, 1] == 16).all() for f in call["future"])


def test_deterministic_and_independent_of_batch_size():
    panel = make_panel({"A": (0, 30), "B": (4, 30), "C": (0, 25)}, n_days=30)
    kw = dict(lookback=10, horizon=3, min_history=6, sampling=SPEC, keep_samples=True)
    base = rolling_forecast(panel, LinearForecaster(min_train_rows=5, n_lags=2), batch_series=1000, **kw)
    assert_frame_equal(base, rolling_forecast(panel, LinearForecaster(min_train_rows=5, n_lags=2), **kw))
    small = rolling_forecast(panel, LinearForecaster(min_train_rows=5, n_lags=2), batch_series=3, **kw)
    assert_frame_equal(base, small)
    other = rolling_forecast(
        panel, LinearForecaster(min_train_rows=5, n_lags=2), **{**kw, "sampling": SamplingSpec(samples=4, seed=8)}
    )
    samples = np.stack(base["close_samples"].to_list())
    assert samples.shape == (base.height, 4)
    assert not np.allclose(samples, np.stack(other["close_samples"].to_list()))  # the seed draws other paths,
    np.testing.assert_array_equal(base["close_mean"], other["close_mean"])  # the exact mean does not move


def test_sharded_building_blocks_reproduce_the_table():
    """A distributed executor's path: plan, shard items, build + forecast each shard, finalize."""
    panel = make_panel({"A": (0, 26), "B": (3, 26), "C": (0, 20)}, n_days=26)
    spec = RollingSpec(lookback=8, min_history=4, rebalance=2, horizon=2, sampling=SPEC)
    expected = rolling_forecast(panel, RandomWalkForecaster(), lookback=8, min_history=4, rebalance=2, horizon=2,
                                sampling=SPEC)
    data = panel_arrays(panel)
    items = plan_windows(data, spec)
    shards = [items[1::3], items[0::3], items[2::3]]  # any split, any order
    parts = [forecast_batch(build_windows(data, shard, spec), RandomWalkForecaster(), spec) for shard in shards]
    table = finalize_table(pl.concat(parts), time_zone=data.time_zone, time_unit=data.time_unit)
    assert_frame_equal(table, expected)


class ReversedExecutor:
    """A stand-in for a remote executor: batches of 3 windows, delivered last first."""

    def map_batches(self, work, deliver):
        for batch in reversed(make_batches(work.windows, work.keys, size=3)):
            deliver(batch, forecast_batch(batch.windows, work.forecaster, work.spec))


class DroppingExecutor:
    def map_batches(self, work, deliver):
        batch = make_batches(work.windows, work.keys, size=4)[0]
        deliver(batch, forecast_batch(batch.windows, work.forecaster, work.spec).head(-1))


def test_table_and_cache_do_not_depend_on_the_executor(tmp_path):
    panel = make_panel({"A": (0, 30), "B": (4, 30), "C": (0, 25)}, n_days=30)
    spec = RollingSpec(lookback=10, horizon=3, min_history=6, sampling=SPEC, keep_samples=True, batch_series=5)
    local = run_rolling(spec, panel, LinearForecaster(min_train_rows=5, n_lags=2))
    other = run_rolling(spec, panel, LinearForecaster(min_train_rows=5, n_lags=2), ReversedExecutor(), cache=tmp_path)
    assert_frame_equal(local, other)
    cache, rec = ForecastCache(tmp_path), Recorder(LinearForecaster(min_train_rows=5, n_lags=2))
    assert_frame_equal(local, run_rolling(spec, panel, rec, cache=cache))  # what it stored serves a local rerun
    assert not rec.calls and cache.stats.misses == 0
    with pytest.raises(RuntimeError, match="do not match"):
        run_rolling(spec, panel, RandomWalkForecaster(), DroppingExecutor())


def test_spec_is_checked_once_when_made():
    spec = RollingSpec(lookback=10, horizon=2, rebalance=[dt.date(2024, 1, 5)], quantile_levels=[0.1, 0.9])
    assert spec.rebalance == (dt.date(2024, 1, 5),) and spec.quantile_levels == (0.1, 0.9) and spec.history == 10
    for bad, match in [(dict(horizon=0), "horizon"), (dict(lookback=0), "lookback"),
                       (dict(batch_series=0), "batch_series"), (dict(rebalance="weekly"), "rebalance"),
                       (dict(quantile_levels=(0.5, 0.5)), "distinct"), (dict(quantile_levels=(1.5,)), "between")]:
        with pytest.raises(ValueError, match=match):
            RollingSpec(**{"lookback": 10, "horizon": 2, **bad})


def test_batches_are_sorted_by_window_length():
    panel = make_panel({"A": (0, 30), "B": (12, 30)}, n_days=30)
    rec = Recorder(RandomWalkForecaster())
    rolling_forecast(panel, rec, lookback=12, horizon=1, min_history=3, sampling=SPEC, batch_series=7)
    lengths = [len(s) for call in rec.calls for s in call["series"]]
    assert lengths == sorted(lengths, reverse=True) and lengths[0] == 12 and lengths[-1] == 3
    assert all(len(call["series"]) <= 7 for call in rec.calls)


def test_empty_schedule_returns_empty_table():
    panel = make_panel({"A": (0, 5)}, n_days=5)
    table = rolling_forecast(panel, RandomWalkForecaster(), lookback=10, horizon=2, sampling=SPEC, keep_samples=True)
    assert table.height == 0 and table.columns == forecast_columns(keep_samples=True)


def test_bad_inputs_raise_clear_errors():
    panel = make_panel({"A": (0, 20)}, n_days=20)
    with pytest.raises(DataError, match="amount"):
        rolling_forecast(panel.drop("amount"), RandomWalkForecaster(), lookback=5, horizon=1)
    with pytest.raises(DataError, match="duplicate"):
        rolling_forecast(pl.concat([panel, panel.head(1)]), RandomWalkForecaster(), lookback=5, horizon=1)
    with pytest.raises(TypeError, match="Forecaster"):
        rolling_forecast(panel, object(), lookback=5, horizon=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="horizon"):
        rolling_forecast(panel, RandomWalkForecaster(), lookback=5, horizon=0)

    class Broken(RandomWalkForecaster):
        def forecast_arrays(self, series, *a, **kw):
            res = super().forecast_arrays(series, *a, **kw)
            res.paths = res.paths[:, :, :1]
            return res

    with pytest.raises(ValueError, match="expected"):
        rolling_forecast(panel, Broken(), lookback=5, horizon=2)


def _daily_ic(table: pl.DataFrame, panel: pl.DataFrame) -> np.ndarray:
    """Per-as-of Spearman IC of expected 1-step return (forecast mean) vs the realised return."""
    realised = table.filter(pl.col("step") == 1).join(
        panel.select("instrument", pl.col("timestamp").alias("target_timestamp"), pl.col("close").alias("next")),
        on=["instrument", "target_timestamp"],
    )
    ics = []
    for (_,), g in realised.group_by(["asof"]):
        signal = g["close_mean"] / g["last_close"] - 1
        outcome = g["next"] / g["last_close"] - 1
        ics.append(spearmanr(signal, outcome).statistic)
    return np.asarray(ics)


@pytest.mark.parametrize("mode, strength", [("martingale", None), ("planted", 0.5)])
def test_known_answer_information_coefficient(mode, strength):
    """Linear-baseline expected returns have IC ~ 0 on a martingale universe and a clearly positive
    IC where the data layer planted a linear function of past returns and ranges."""
    panel = synthetic_market(30, 220, mode=mode, strength=strength, seed=0)
    table = rolling_forecast(
        panel, LinearForecaster(n_lags=5), lookback=150, horizon=1, rebalance=3,
        sampling=SamplingSpec(samples=1, top_k=1),
    )
    ic = _daily_ic(table, panel)
    assert len(ic) >= 20
    se = ic.std(ddof=1) / np.sqrt(len(ic))
    if mode == "planted":
        assert ic.mean() > 0.2 and ic.mean() > 5 * se, (ic.mean(), se)
    else:
        assert abs(ic.mean()) < 3 * se, (ic.mean(), se)


def test_known_answer_on_own_autoregressive_universe():
    """The same check on a hand-made universe: AR(1) returns (phi = 0.5) vs independent returns."""
    kw = dict(n_days=150, seed=11, vol=0.02)
    spans = {f"S{i:02d}": (0, 150) for i in range(20)}
    spec = SamplingSpec(samples=1, top_k=1)
    ics = {}
    for phi in (0.0, 0.5):
        panel = make_panel(spans, phi=phi, **kw)
        table = rolling_forecast(panel, LinearForecaster(n_lags=2), lookback=60, horizon=1, rebalance=5,
                                 sampling=spec)
        ics[phi] = _daily_ic(table, panel)
    se0 = ics[0.0].std(ddof=1) / np.sqrt(len(ics[0.0]))
    assert abs(ics[0.0].mean()) < 3 * se0
    assert ics[0.5].mean() > 0.25
