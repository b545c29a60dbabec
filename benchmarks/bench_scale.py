"""Scale-out benchmark: the local backend against the Ray backend with 1 and 2 workers, plus a projection.

Run: ``python benchmarks/bench_scale.py`` (about 5 minutes on 2 CPU cores; ``--quick`` skips
Kronos-small). Needs Ray (``pip install "kronos-quant[ray]"``).

Workloads (synthetic business-day panels, lookback 400, horizon 5, one sample path, seed 0; the
same windows for every backend):

* ``random_walk``: the baseline forecaster; almost no model work, so it shows the backend's own cost.
* ``kronos-tiny``: the tiny-a reference checkpoint (../shared/fixtures, 2 layers, d_model 32).
* ``kronos-small``: a random Kronos-small-shaped model (8 layers, d_model 512, Kronos-Tokenizer-base).

Each is run with ``run_rolling`` on the ``LocalExecutor`` and on a ``RayExecutor`` with 1 and 2
workers; the local process and every worker use ``--threads`` torch threads (default 1), so
"ray x2 vs local" is the gain from a second worker on a second core. Ray itself is
started once, before the timings; each Ray run includes creating its actors (process start,
package import, model build); that start-up is measured separately (a Ray run of 1 forecast per
worker, plus the model build time) and printed beside the wall time. The table prints forecasts/s,
the ratio to the local backend and whether the table equals the local backend's. Then the driver's own cost per forecast (planning, cache keys, cache
writes) is measured, and a projection for 5,000 instruments x 10 years of daily bars is printed
from the measured Kronos-small cost plus *assumed* GPU throughput (see ``--gpu-tflops``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, matmul_gflops  # noqa: E402
from bench_predictor import model_flops  # noqa: E402

from kronos_quant.data.arrays import panel_arrays  # noqa: E402
from kronos_quant.data.synthetic import synthetic_market  # noqa: E402
from kronos_quant.engine import ForecastCache, RollingSpec, run_rolling  # noqa: E402
from kronos_quant.schema import SamplingSpec  # noqa: E402

TINY = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "kronos-reference" / "tiny-a"
LOOKBACK, HORIZON = 400, 5
# forecaster -> (instruments, bars, rebalance every k bars): a few hundred windows, less for Kronos-small
WORKLOADS = {"random_walk": (24, 700, 5), "kronos-tiny": (8, 700, 10), "kronos-small": (4, 600, 20)}


def make_random_walk() -> Any:
    from kronos_quant.baselines import RandomWalkForecaster

    return RandomWalkForecaster()


def make_kronos_tiny() -> Any:
    from kronos_quant import Kronos, KronosTokenizer
    from kronos_quant.predictor import BatchPredictor

    return BatchPredictor(Kronos.from_pretrained(str(TINY / "predictor")),
                          KronosTokenizer.from_pretrained(str(TINY / "tokenizer")), device="cpu")


def make_kronos_small() -> Any:
    from _common import random_small_models

    from kronos_quant.predictor import BatchPredictor

    model, tokenizer = random_small_models(seed=0)  # same seed in every process: the same weights
    return BatchPredictor(model, tokenizer, device="cpu")


FACTORIES = {"random_walk": make_random_walk, "kronos-tiny": make_kronos_tiny, "kronos-small": make_kronos_small}


def run_spec(rebalance: int, batch: int) -> RollingSpec:
    return RollingSpec(lookback=LOOKBACK, horizon=HORIZON, rebalance=rebalance,
                       sampling=SamplingSpec(samples=1, seed=0), batch_series=batch)


def time_local(data: Any, factory: Any, rebalance: int, batch: int) -> tuple[Any, float]:
    forecaster = factory()
    t0 = time.perf_counter()
    table = run_rolling(run_spec(rebalance, batch), data, forecaster, quiet=True)
    return table, time.perf_counter() - t0


def time_ray(data: Any, factory: Any, rebalance: int, batch: int, workers: int, threads: int) -> tuple[Any, float]:
    from kronos_quant.distributed import RayExecutor, RayOptions

    options = RayOptions(num_workers=workers, num_cpus_per_worker=threads)  # Ray sets OMP_NUM_THREADS from it
    t0 = time.perf_counter()
    table = run_rolling(run_spec(rebalance, batch), data, factory(), RayExecutor(options, factory=factory), quiet=True)
    return table, time.perf_counter() - t0


def driver_cost(data: Any, table: Any, rebalance: int, batch: int, shard: int) -> dict[str, float]:
    """Seconds per forecast the driver spends itself: planning + cache keys + lookup + assembly
    (a fully cached rerun), and writing finished shards of ``shard`` forecasts to the cache."""
    n = table.select("instrument", "asof").unique().height
    with tempfile.TemporaryDirectory(prefix="kq-bench-scale-") as tmp:
        cache = ForecastCache(tmp)
        run_rolling(run_spec(rebalance, batch), data, make_random_walk(), cache=cache, quiet=True)
        t0 = time.perf_counter()
        run_rolling(run_spec(rebalance, batch), data, make_random_walk(), cache=ForecastCache(tmp), quiet=True)
        plan = (time.perf_counter() - t0) / n
    rows = table.with_columns(cache_key=table["instrument"] + table["asof"].cast(str))
    with tempfile.TemporaryDirectory(prefix="kq-bench-scale-") as tmp:
        cache = ForecastCache(tmp)
        t0 = time.perf_counter()
        for lo in range(0, rows.height, shard * HORIZON):
            cache.store("c" * 64, rows.slice(lo, shard * HORIZON))
        store = (time.perf_counter() - t0) / n
    return {"plan_lookup_assemble": plan, "cache_store": store}


def projection(small_s: float, rw_local_s: float, driver: dict[str, float], args: argparse.Namespace) -> None:
    """Print the 5,000 x 10-year projection on 1, 8 and 64 GPUs (assumptions labelled)."""
    n_asof = (10 * 252 - LOOKBACK) // 5 + 1  # weekly as-ofs once 400 bars of history exist
    n_fc = 5000 * n_asof
    flops = {s: model_flops(dict(horizon=HORIZON, samples=s), [LOOKBACK], 512) for s in (1, 8)}
    cpu_rate = flops[1] / small_s / 1e9
    print("\nProjection: 5,000 instruments x 10 years of daily bars, weekly rebalance, Kronos-small")
    print(f"  workload: lookback {LOOKBACK} (max_context 512), horizon {HORIZON}, min_history = lookback -> "
          f"{n_asof} as-of dates x 5,000 = {n_fc / 1e6:.2f} M forecasts")
    print(f"  MEASURED here (CPU, no GPU in this session): Kronos-small {small_s * 1e3:.0f} ms/forecast "
          f"(S=1) = {cpu_rate:.1f} GFLOP/s effective on {flops[1] / 1e9:.1f} GFLOP/forecast (analytic); "
          f"host-side work per forecast (random-walk local run, upper bound) {rw_local_s * 1e3:.2f} ms; driver "
          f"{driver['plan_lookup_assemble'] * 1e3:.3f} ms (plan+keys+lookup+assembly) + "
          f"{driver['cache_store'] * 1e3:.3f} ms (cache write)")
    print(f"  ASSUMED (not measured): effective TFLOP/s per H100 on this model of {args.gpu_tflops} "
          f"(bf16, batch {args.gpu_batch}; peak dense bf16 is ~990); {args.step_ms:g} ms per generated step per "
          f"batch (launch-bound decode); host work per forecast in an actor as measured here, not overlapped with "
          f"the GPU; {args.efficiency:.0%} parallel efficiency across nodes at 64 GPUs (100% within one 8-GPU "
          f"node); one driver process doing the planning and all cache writes")
    driver_s = driver["plan_lookup_assemble"] + driver["cache_store"]
    head = (f"  {'TFLOP/s':>7} {'S':>2} {'GPUs':>5} {'GPU ms/fc':>10} {'fc/s':>9} {'driver cap':>11} {'wall':>9}"
            "  bottleneck")
    print(head + "\n  " + "-" * (len(head) - 2))
    for tflops in args.gpu_tflops:
        for s in (1, 8):
            gpu_s = flops[s] / (tflops * 1e12) + HORIZON * args.step_ms / 1e3 / args.gpu_batch
            per_gpu = 1.0 / (gpu_s + rw_local_s)
            for n_gpus in (1, 8, 64):
                eff = 1.0 if n_gpus <= 8 else args.efficiency
                rate = min(per_gpu * n_gpus * eff, 1.0 / driver_s)
                limit = "driver" if rate * driver_s >= 0.999 else "GPU + actor host work"
                print(f"  {tflops:>7g} {s:>2} {n_gpus:>5} {gpu_s * 1e3:>10.3f} {rate:>9.0f} {1 / driver_s:>11.0f} "
                      f"{n_fc / rate / 3600:>8.2f}h  {limit}")
    print(f"  (the same 2.1 M forecasts on this 2-core CPU: ~{n_fc * small_s / 86400:.0f} days)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="skip Kronos-small (and the projection)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of the local process and of each Ray worker (default 1: on a shared, "
                         "loaded 2-core machine 2 threads ran kronos-tiny 6-10x slower than 1)")
    ap.add_argument("--batch", type=int, default=32, help="max series per forecaster call (= shard size)")
    ap.add_argument("--gpu-tflops", type=float, nargs="+", default=[30.0, 150.0],
                    help="ASSUMED effective TFLOP/s per GPU (one projection per value)")
    ap.add_argument("--gpu-batch", type=int, default=256,
                    help="series per GPU batch and per shard in the projection (forecast.batch_series default)")
    ap.add_argument("--step-ms", type=float, default=3.0, help="ASSUMED ms per decode step per GPU batch")
    ap.add_argument("--efficiency", type=float, default=0.9, help="ASSUMED multi-node parallel efficiency")
    args = ap.parse_args(argv)
    try:
        import ray
    except ImportError:
        print('bench_scale needs Ray: pip install "kronos-quant[ray]"', file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    kinds = [k for k in FACTORIES if not (args.quick and k == "kronos-small")]
    if not TINY.is_dir():
        print(f"{TINY} not found: skipping kronos-tiny", file=sys.stderr)
        kinds.remove("kronos-tiny")
    print(f"machine: {machine()}; {os.cpu_count()} CPUs shared with other users, load average "
          f"{os.getloadavg()[0]:.1f} at start; plain fp32 matmul {matmul_gflops():.0f} GFLOP/s")
    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR")
    print(f"ray {ray.__version__}: local instance started in {time.perf_counter() - t0:.1f} s (excluded below)")
    tiny = panel_arrays(synthetic_market(2, LOOKBACK + 1, seed=1))
    fixed = {w: time_ray(tiny, make_random_walk, 5, 1, w, args.threads)[1] for w in (1, 2)}  # 2 shards of 1 forecast
    print(f"fixed cost of a Ray run (actors start, import the package, 1 forecast each): "
          f"1 worker {fixed[1]:.1f} s, 2 workers {fixed[2]:.1f} s\n")

    head = (f"{'forecaster':13} {'backend':8} {'threads':>7} {'forecasts':>9} {'wall s':>8} {'fc/s':>8} "
            f"{'vs local':>9} {'start-up s':>10} {'identical':>9}")
    print(head + "\n" + "-" * len(head))
    per_fc: dict[str, float] = {}
    rw_data = rw_table = None
    for kind in kinds:
        n_inst, n_bars, rebalance = WORKLOADS[kind]
        data = panel_arrays(synthetic_market(n_inst, n_bars, seed=0))
        factory = FACTORIES[kind]
        t_build = time.perf_counter()
        factory()
        build_s = time.perf_counter() - t_build
        local, local_s = time_local(data, factory, rebalance, args.batch)
        n = local.select("instrument", "asof").unique().height
        per_fc[kind] = local_s / n
        if kind == "random_walk":
            rw_data, rw_table = data, local
        print(f"{kind:13} {'local':8} {torch.get_num_threads():>7} {n:>9} {local_s:>8.2f} {n / local_s:>8.1f} "
              f"{'1.00x':>9} {build_s:>10.1f} {'-':>9}")
        for w in (1, 2):
            table, wall = time_ray(data, factory, rebalance, args.batch, w, args.threads)
            if table.equals(local):
                same = "yes"
            else:
                diff = np.nanmax(np.abs(table["close_mean"].to_numpy() - local["close_mean"].to_numpy()))
                same = f"no ({diff:.1e})"
            print(f"{kind:13} {f'ray x{w}':8} {args.threads:>7} {n:>9} {wall:>8.2f} {n / wall:>8.1f} "
                  f"{local_s / wall:>8.2f}x {fixed[w] + build_s:>10.1f} {same:>9}")
    driver = driver_cost(rw_data, rw_table, WORKLOADS["random_walk"][2], args.batch, args.gpu_batch)
    print(f"\ndriver cost per forecast (random-walk workload): plan + keys + lookup + assembly "
          f"{driver['plan_lookup_assemble'] * 1e3:.3f} ms, cache write {driver['cache_store'] * 1e3:.3f} ms "
          f"(shards of {args.gpu_batch} forecasts, S=1, no samples kept)")
    if "kronos-small" in per_fc:
        projection(per_fc["kronos-small"], per_fc["random_walk"], driver, args)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}; torch threads in this process "
          f"{torch.get_num_threads()}")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
