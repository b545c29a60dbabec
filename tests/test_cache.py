"""Forecast cache: reruns do no model work, extensions compute only what is new, crashes resume."""

from __future__ import annotations

import polars as pl
import pytest
import torch
from polars.testing import assert_frame_equal

from kronos_quant.baselines import LinearForecaster, RandomWalkForecaster
from kronos_quant.engine import ForecastCache, rolling_forecast
from kronos_quant.schema import SamplingSpec
from tests.conftest import make_panel

SPEC = SamplingSpec(samples=3, seed=1)
KW = dict(lookback=10, horizon=2, min_history=5, sampling=SPEC, batch_series=4)


class Counting:
    """Counts forecaster calls and series; raises after ``fail_after`` calls (a simulated crash)."""

    def __init__(self, inner=None, fail_after: int | None = None):
        self.inner = inner or RandomWalkForecaster()
        self.fail_after = fail_after
        self.calls = 0
        self.series = 0

    @property
    def identity(self):
        return self.inner.identity

    def forecast_arrays(self, series, *args, **kw):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls += 1
        self.series += len(series)
        return self.inner.forecast_arrays(series, *args, **kw)


def batch_files(root) -> list:
    return sorted(root.rglob("batch-*.parquet"))


def test_rerun_does_no_model_work(tmp_path):
    panel = make_panel()
    first = Counting()
    table = rolling_forecast(panel, first, cache=tmp_path, **KW)
    n_series = table.select("instrument", "asof").unique().height
    assert first.series == n_series and first.calls == -(-n_series // 4)
    assert len(batch_files(tmp_path)) == first.calls
    cache = ForecastCache(tmp_path)
    again = Counting()
    rerun = rolling_forecast(panel, again, cache=cache, **KW)
    assert again.calls == 0 and cache.stats.hits == n_series and cache.stats.misses == 0
    assert_frame_equal(table, rerun)
    assert_frame_equal(table, rolling_forecast(panel, Counting(), **KW))  # equals an uncached run
    assert not list(tmp_path.rglob("*.tmp"))


def test_longer_range_and_nightly_run_compute_only_new_forecasts(tmp_path):
    panel = make_panel(n_days=30)
    cal = panel["timestamp"].unique().sort()
    early = panel.filter(pl.col("timestamp") <= cal[24])  # the data as it was 5 days ago
    rolling_forecast(early, Counting(), cache=tmp_path, **KW)
    nightly = Counting()
    cache = ForecastCache(tmp_path)
    full = rolling_forecast(panel, nightly, cache=cache, **KW)
    # new: 5 as-of dates x 3 instruments, plus the old last 1 as-of whose target timestamps were
    # calendar-generated and are now the data's own (identical here: no holidays -> cache hit)
    assert nightly.series == 5 * 3
    assert cache.stats.hits == full.select("instrument", "asof").unique().height - 15
    assert_frame_equal(full, rolling_forecast(panel, Counting(), **KW))


def test_interrupted_run_resumes_without_recomputing(tmp_path):
    panel = make_panel(4, n_days=26)
    reference = rolling_forecast(panel, Counting(LinearForecaster(min_train_rows=4, n_lags=2)), **KW)
    n_series = reference.select("instrument", "asof").unique().height
    crashing = Counting(LinearForecaster(min_train_rows=4, n_lags=2), fail_after=3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        rolling_forecast(panel, crashing, cache=tmp_path, **KW)
    assert crashing.calls == 3 and len(batch_files(tmp_path)) == 3
    assert not list(tmp_path.rglob("*.tmp"))
    resumed = Counting(LinearForecaster(min_train_rows=4, n_lags=2))
    cache = ForecastCache(tmp_path)
    table = rolling_forecast(panel, resumed, cache=cache, **KW)
    assert cache.stats.hits == crashing.series == 12
    assert resumed.series == n_series - 12
    assert_frame_equal(table, reference)


def test_corrupt_and_partial_files_are_ignored_with_a_warning(tmp_path):
    panel = make_panel()
    table = rolling_forecast(panel, Counting(), cache=tmp_path, **KW)
    files = batch_files(tmp_path)
    files[0].write_bytes(b"not a parquet file")
    files[1].write_bytes(files[1].read_bytes()[:100])  # truncated, as if the disk filled up
    pl.DataFrame({"x": [1]}).write_parquet(files[0].parent / "batch-foreign.parquet")
    cache = ForecastCache(tmp_path)
    redo = Counting()
    with pytest.warns(RuntimeWarning, match="ignoring unreadable forecast-cache file"):
        again = rolling_forecast(panel, redo, cache=cache, **KW)
    assert cache.stats.files_ignored == 3
    assert redo.series == 8  # the two damaged batches of 4 series, recomputed
    assert_frame_equal(table, again)


def test_cache_key_covers_config_and_inputs(tmp_path):
    panel = make_panel()
    cache = ForecastCache(tmp_path)
    base = rolling_forecast(panel, Counting(), cache=cache, **KW)
    n_series = base.select("instrument", "asof").unique().height
    variants = [
        dict(sampling=SamplingSpec(samples=3, seed=2)),
        dict(sampling=SamplingSpec(samples=3, seed=1, temperature=0.5)),
        dict(horizon=3),
        dict(quantile_levels=(0.1, 0.9)),
        dict(keep_samples=True),
    ]
    for change in variants:
        counter = Counting()
        rolling_forecast(panel, counter, cache=cache, **{**KW, **change})
        assert counter.series == n_series, change
    other_model = Counting(RandomWalkForecaster(volume_mode="last"))
    rolling_forecast(panel, other_model, cache=cache, **KW)
    assert other_model.series == n_series
    # a revised bar changes exactly the windows that contain it
    cal = panel["timestamp"].unique().sort()
    revised = panel.with_columns(
        pl.when((pl.col("instrument") == "I0") & (pl.col("timestamp") == cal[20]))
        .then(pl.col("close") * 1.05).otherwise(pl.col("close")).alias("close")
    )
    counter = Counting()
    rolling_forecast(revised, counter, cache=cache, **KW)
    assert counter.series == 24 - 20  # I0's as-of dates 20..23 hold the revised bar


def test_keep_samples_round_trip_and_compaction(tmp_path):
    panel = make_panel()
    kw = {**KW, "keep_samples": True}
    table = rolling_forecast(panel, Counting(), cache=tmp_path, **kw)
    assert len(batch_files(tmp_path)) > 2
    cache = ForecastCache(tmp_path)
    removed = cache.compact()
    assert len(batch_files(tmp_path)) == 1 and removed > 1
    counter = Counting()
    again = rolling_forecast(panel, counter, cache=cache, **kw)
    assert counter.calls == 0
    assert_frame_equal(table, again)
    assert again.schema["close_samples"] == pl.List(pl.Float64)


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    panel = make_panel()

    def broken_write(self, path, *a, **kw):
        with open(path, "wb") as fh:
            fh.write(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", broken_write)
    with pytest.raises(OSError, match="disk full"):
        rolling_forecast(panel, Counting(), cache=tmp_path, **KW)
    assert not batch_files(tmp_path) and not list(tmp_path.rglob("*.tmp"))


# ----------------------------------------------------------------------------- one model identity


def _no_weights(*args, **kwargs):
    raise AssertionError("model weights were loaded")


def test_predictor_and_config_routes_share_cache_entries(tmp_path, monkeypatch):
    """``KronosPredictor.from_pretrained("kronos-demo")`` (notebooks) and ``model.id: kronos-demo``
    (configs) are one model: the second route finds every forecast of the first in the cache, and
    never loads weights."""
    from kronos_quant.config import load_config
    from kronos_quant.model import hub
    from kronos_quant.predictor import KronosPredictor
    from kronos_quant.workflow import make_forecaster

    panel = make_panel(2, n_days=22)
    kw = dict(lookback=16, horizon=2, rebalance=3, sampling=SamplingSpec(samples=2, seed=3), quiet=True)
    predictor = Counting(KronosPredictor.from_pretrained("kronos-demo", device="cpu"))
    table = rolling_forecast(panel, predictor, cache=tmp_path, **kw)
    n_series = table.select("instrument", "asof").unique().height
    assert predictor.series == n_series > 0

    monkeypatch.setattr(hub, "_read_weights", _no_weights)  # from here on, loading any checkpoint fails
    lazy = make_forecaster(load_config(None, overrides=["model.id=kronos-demo", "model.device=cpu"]))
    assert lazy.identity == predictor.identity
    cache = ForecastCache(tmp_path)
    again = rolling_forecast(panel, lazy, cache=cache, **kw)
    assert cache.stats.hits == n_series and cache.stats.misses == 0 and not lazy.loaded
    assert_frame_equal(table, again)


def test_directory_route_shares_entries_and_identity_follows_the_files(tmp_path, tiny_models):
    from kronos_quant.forecasters import build_forecaster
    from kronos_quant.predictor import KronosPredictor

    model, tok = tiny_models
    model.save_pretrained(tmp_path / "pair" / "predictor")
    tok.save_pretrained(tmp_path / "pair" / "tokenizer")
    panel = make_panel(2, n_days=16)
    kw = dict(lookback=8, horizon=2, rebalance=4, sampling=SamplingSpec(samples=2, seed=1), quiet=True)
    cache_dir = tmp_path / "cache"
    table = rolling_forecast(panel, KronosPredictor.from_pretrained(str(tmp_path / "pair"), device="cpu"),
                             cache=cache_dir, **kw)
    lazy = build_forecaster(str(tmp_path / "pair"))
    cache = ForecastCache(cache_dir)
    assert_frame_equal(table, rolling_forecast(panel, lazy, cache=cache, **kw))
    assert cache.stats.misses == 0 and not lazy.loaded
    identity = lazy.identity
    assert identity["kronos_quant"] and identity["clip"] == 5.0 and identity["max_context"] == 512
    # other settings or other weights: another identity, so no stale cache entry can be served
    assert build_forecaster(str(tmp_path / "pair"), max_context=64).identity != identity
    assert build_forecaster(str(tmp_path / "pair"), dtype="bfloat16").identity != identity
    with torch.no_grad():
        model.norm.weight.add_(1.0)
    try:
        model.save_pretrained(tmp_path / "pair" / "predictor")
    finally:
        with torch.no_grad():
            model.norm.weight.sub_(1.0)  # the session fixture is shared
    assert build_forecaster(str(tmp_path / "pair")).identity["weights"] != identity["weights"]
