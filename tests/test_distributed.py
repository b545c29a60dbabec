"""The Ray executor: same table as the local executor, cache reuse, retries, killed workers, resume.

Tests that run Ray share one module-scoped ``ray.init(num_cpus=2)`` and skip where Ray is not
installed; the shard bookkeeping, resource fitting and the missing-Ray error are tested without it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from polars.testing import assert_frame_equal

from kronos_quant.baselines import RandomWalkForecaster
from kronos_quant.data.arrays import panel_arrays
from kronos_quant.data.synthetic import synthetic_market
from kronos_quant.distributed import (
    DistributedForecastError,
    RayExecutor,
    RayOptions,
    ShardLedger,
    ensure_ray,
    forecaster_factory,
    ray_backend,
    ray_executor,
    ray_options,
    worker_resources,
)
from kronos_quant.engine import (
    ForecastCache,
    LocalExecutor,
    RollingSpec,
    build_windows,
    make_batches,
    plan_windows,
    run_rolling,
)
from kronos_quant.errors import ConfigError
from kronos_quant.schema import SamplingSpec

RUN = RollingSpec(lookback=32, horizon=3, rebalance=5, sampling=SamplingSpec(samples=4, seed=11),
                  batch_series=8, keep_samples=True)


def on_ray(panel, forecaster, executor=None, **kwargs):
    """``run_rolling`` of RUN on Ray (default: 2 workers), quietly."""
    return run_rolling(RUN, panel, forecaster, executor or RayExecutor(RayOptions(num_workers=2)), quiet=True, **kwargs)


@pytest.fixture(scope="module")
def panel():
    return synthetic_market(6, 150, seed=3)


@pytest.fixture(scope="module")
def local_table(panel):
    return run_rolling(RUN, panel, RandomWalkForecaster(), LocalExecutor(), quiet=True)


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import this file
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


class SlowRandomWalk:
    """A random walk that sleeps ``delay`` s per call (so that a run can be interrupted)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.inner, self.delay = RandomWalkForecaster(), delay

    @property
    def identity(self):
        return self.inner.identity

    def forecast_arrays(self, series, past_stamps, future_stamps, **kwargs):
        time.sleep(self.delay)
        return self.inner.forecast_arrays(series, past_stamps, future_stamps, **kwargs)


class DieOnNthCall(SlowRandomWalk):
    """Kills its own process (``os._exit``) on its ``nth`` call, once per run (``marker`` file)."""

    def __init__(self, marker: str, nth: int) -> None:
        super().__init__()
        self.marker, self.nth, self.calls = marker, nth, 0

    def forecast_arrays(self, series, past_stamps, future_stamps, **kwargs):
        self.calls += 1
        if self.calls == self.nth and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)
        return super().forecast_arrays(series, past_stamps, future_stamps, **kwargs)


class Poisoned(SlowRandomWalk):
    """Raises for any batch holding a window whose last close is ``bad_close`` (one fixed window)."""

    def __init__(self, bad_close: float) -> None:
        super().__init__()
        self.bad_close = bad_close

    def forecast_arrays(self, series, past_stamps, future_stamps, **kwargs):
        if any(s[-1, 3] == self.bad_close for s in series):
            raise ValueError("poisoned window")
        return super().forecast_arrays(series, past_stamps, future_stamps, **kwargs)


def _batch_files(root: Path) -> int:
    return len(list(root.glob("*/batch-*.parquet")))


# ----------------------------------------------------------------------------- without Ray


def test_missing_ray_names_the_install_command(monkeypatch, panel):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ConfigError, match=r'pip install "kronos-quant\[ray\]"'):
        ensure_ray()
    with pytest.raises(ConfigError, match="forecast.backend"):
        on_ray(panel, RandomWalkForecaster())


def test_shards_follow_the_local_batch_order(panel):
    data = panel_arrays(panel)
    spec = RollingSpec(lookback=32, horizon=3, rebalance=5, min_history=10)
    items = plan_windows(data, spec)
    windows = build_windows(data, items, spec)
    keys = [f"k{i}" for i in range(len(windows))]
    shards = make_batches(windows, keys, size=7)
    assert [s.index for s in shards] == list(range(len(shards)))
    assert all(s.n_forecasts == 7 for s in shards[:-1]) and 1 <= shards[-1].n_forecasts <= 7
    flat = [it for s in shards for it in s.items]
    assert sorted(flat, key=lambda it: (it.asof_ns, it.instrument)) == items  # every item exactly once
    order = [(-it.length, it.asof_ns, it.instrument) for it in flat]
    assert order == sorted(order)  # longest windows first, as the local executor batches them
    key_of = {w.item: k for w, k in zip(windows, keys)}
    assert all(key_of[it] == k for s in shards for it, k in zip(s.items, s.keys))
    local = [it for b in make_batches(windows, keys, size=14) for it in b.items]
    assert local == flat  # a shard of 7 is half of a local batch of 14, in the same order
    with pytest.raises(ValueError, match="size"):
        make_batches(windows, keys, size=0)


def test_ledger_retries_elsewhere_then_gives_up(panel):
    data = panel_arrays(panel)
    spec = RollingSpec(lookback=32, horizon=2, rebalance=20)
    shards = make_batches(build_windows(data, plan_windows(data, spec), spec), [], size=4)
    ledger = ShardLedger(shards, max_retries=1)
    first = ledger.next_for("a", ["a", "b"])
    assert first is shards[0]
    assert ledger.charge(first, "a", "boom")  # requeued at the front
    assert ledger.next_for("a", ["a", "b"]) is shards[1]  # worker a avoids the shard that failed on it
    assert ledger.next_for("b", ["a", "b"]) is first
    assert not ledger.charge(first, "b", "boom again")  # retries spent
    assert ledger.failures[0].attempts == 2 and ledger.failures[0].error == "boom again"
    ledger.requeue(shards[1])  # a shard that never ran: no attempt charged
    assert ledger.attempts.get(shards[1].index) is None
    ledger.abandon_pending("no worker")
    assert not ledger.pending and len(ledger.failures) == len(shards)  # 1 spent + the rest abandoned
    err = DistributedForecastError(ledger.failures, n_shards=len(shards), cached=True)
    assert "@" in str(err) and first.items[0].instrument in str(err) and "rerun" in str(err)


def test_worker_resources_fit_the_cluster():
    def fake(cpus, gpus=0.0):
        return SimpleNamespace(cluster_resources=lambda: {"CPU": cpus, "GPU": gpus})

    assert worker_resources(fake(8), RayOptions(num_workers=2), 2) == (2, {"num_cpus": 4, "num_gpus": 0})
    assert worker_resources(fake(2), RayOptions(), 4) == (4, {"num_cpus": 0.5, "num_gpus": 0})
    auto = RayOptions(num_gpus_per_worker=None)
    assert worker_resources(fake(64, 8), auto, 16) == (8, {"num_cpus": 1, "num_gpus": 1})
    assert worker_resources(fake(8, 0), auto, 2) == (2, {"num_cpus": 4, "num_gpus": 0})
    with pytest.raises(ConfigError, match="GPU"):
        worker_resources(fake(8, 0), RayOptions(num_gpus_per_worker=1), 2)
    with pytest.raises(ValueError, match="num_workers"):
        RayOptions(num_workers=0)


def test_options_and_factory_from_config():
    from kronos_quant.config import load_config

    cfg = load_config(None, overrides=["model.id=kronos-small", "model.device=cuda:1", "forecast.num_workers=8",
                                       "forecast.ray_address=auto"])
    opts = ray_options(cfg)
    assert (opts.address, opts.num_workers, opts.num_gpus_per_worker) == ("auto", 8, None)
    assert forecaster_factory(cfg.model).keywords["device"] == "cuda"  # each actor sees only its own GPU
    base = load_config(None, overrides=["model.id=baseline:random_walk"])
    assert ray_options(base).num_gpus_per_worker == 0.0
    assert isinstance(forecaster_factory(base.model)(), RandomWalkForecaster)
    executor = ray_executor(base, num_workers=3)
    assert executor.options.num_workers == 3 and isinstance(executor.factory(), RandomWalkForecaster)


# ----------------------------------------------------------------------------- with Ray


def test_workflow_ray_backend_matches_local_and_reuses_the_cache(ray_session, panel, local_table, tmp_path,
                                                                  monkeypatch):
    from kronos_quant.config import load_config
    from kronos_quant.workflow import forecast_table

    sets = ["model.id=baseline:random_walk", "forecast.lookback=32", "forecast.horizon=3", "forecast.rebalance=5",
            "forecast.samples=4", "forecast.seed=11", "forecast.batch_series=8", "forecast.keep_samples=true",
            f"forecast.cache_dir={tmp_path / 'cache'}", "forecast.backend=ray", "forecast.num_workers=2"]
    cfg = load_config(None, overrides=sets)
    table, stats = forecast_table(cfg, panel, None, quiet=True)
    assert_frame_equal(table, local_table)
    n_forecasts = stats["forecasts"]
    assert stats["cache_misses"] == n_forecasts > 0 and _batch_files(tmp_path / "cache") == -(-n_forecasts // 8)

    def no_ray(*args, **kwargs):
        raise AssertionError("a fully cached run must not start Ray")

    monkeypatch.setattr(ray_backend, "_run_shards", no_ray)
    again, stats = forecast_table(cfg, panel, None, quiet=True)
    assert_frame_equal(again, local_table)
    assert stats["cache_hits"] == n_forecasts and stats["cache_misses"] == 0


@pytest.mark.slow  # a replacement actor imports the package again: ~10 s on 2 cores
def test_actor_killed_mid_run_is_replaced(ray_session, panel, local_table, tmp_path, caplog):
    cache_dir = tmp_path / "cache"
    killed: list[str] = []

    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _batch_files(cache_dir) < 2:  # wait until the run is under way
            time.sleep(0.01)
        names = sorted(n for n in ray_session.util.list_named_actors() if n.startswith("kq-forecast-"))
        if names:
            ray_session.kill(ray_session.get_actor(names[0]))
            killed.append(names[0])

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    with caplog.at_level("WARNING", logger="kronos_quant.distributed"):
        table = on_ray(panel, SlowRandomWalk(0.1), cache=cache_dir)  # the forecaster is pickled to the actors
    thread.join()
    assert killed, "the killer thread found no worker to kill"
    assert "started a replacement" in caplog.text
    assert_frame_equal(table, local_table)
    assert not [n for n in ray_session.util.list_named_actors() if n.startswith("kq-forecast-")]  # cleaned up


@pytest.mark.slow
def test_worker_that_exits_on_its_nth_call(ray_session, panel, local_table, tmp_path, caplog):
    marker = tmp_path / "died"
    with caplog.at_level("WARNING", logger="kronos_quant.distributed"):
        table = on_ray(panel, RandomWalkForecaster(),
                       RayExecutor(RayOptions(num_workers=2, shard_size=16), factory=lambda: DieOnNthCall(str(marker), 3)))
    assert marker.exists() and "started a replacement" in caplog.text
    assert_frame_equal(table, local_table)


@pytest.mark.slow
def test_failing_shard_is_named_and_a_rerun_resumes(ray_session, panel, local_table, tmp_path):
    data = panel_arrays(panel)
    items = plan_windows(data, RUN)
    bad = items[len(items) // 2]
    bad_close = float(data.instruments[bad.instrument].values[bad.end, 3])
    cache_dir = tmp_path / "cache"
    with pytest.raises(DistributedForecastError) as info:
        on_ray(panel, Poisoned(bad_close), RayExecutor(RayOptions(num_workers=2, max_retries=1)), cache=cache_dir)
    err = info.value
    assert len(err.failures) == 1 and err.failures[0].attempts == 2
    assert bad in err.failures[0].shard.items
    asof = np.datetime64(bad.asof_ns, "ns").astype("datetime64[D]")
    assert f"{bad.instrument} @ {asof}" in str(err) and "poisoned window" in str(err)

    cache = ForecastCache(cache_dir)
    table = on_ray(panel, RandomWalkForecaster(), RayExecutor(RayOptions(num_workers=1)), cache=cache)
    assert cache.stats.misses == err.failures[0].shard.n_forecasts  # only the failed shard is recomputed
    assert cache.stats.hits == len(items) - cache.stats.misses
    assert_frame_equal(table, local_table)


_DRIVER_PID = os.getpid()


def _only_on_the_driver():
    if os.getpid() != _DRIVER_PID:
        raise RuntimeError("no weights on this node")
    return RandomWalkForecaster()


def test_forecaster_that_cannot_be_built_on_workers_is_reported(ray_session, panel):
    executor = RayExecutor(RayOptions(num_workers=1), factory=_only_on_the_driver)
    with pytest.raises(DistributedForecastError, match="RuntimeError: no weights on this node") as info:
        on_ray(panel, RandomWalkForecaster(), executor)
    n_items = len(plan_windows(panel_arrays(panel), RUN))
    assert sum(f.shard.n_forecasts for f in info.value.failures) == n_items  # nothing ran, all named


def test_worker_forecaster_must_match_the_driver_identity(ray_session, panel, tmp_path):
    """The driver's identity keys the cache: an actor whose factory builds another model refuses to run."""
    executor = RayExecutor(RayOptions(num_workers=1), factory=lambda: RandomWalkForecaster(volume_mode="last"))
    with pytest.raises(DistributedForecastError, match="differs from the driver's"):
        on_ray(panel, RandomWalkForecaster(), executor, cache=tmp_path)
    assert not list(tmp_path.rglob("batch-*.parquet"))  # nothing was cached under the wrong identity
