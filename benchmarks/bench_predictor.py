"""Predictor benchmark: the fast (KV-cached, batched) path against the reference path.

    python benchmarks/bench_predictor.py            # CPU cases, each against the reference in the same run
    python benchmarks/bench_predictor.py --gpu      # plus GPU throughput (needs CUDA)

Workload W: Kronos-small + Kronos-Tokenizer-base dimensions (random weights), 8 series, lookback
400, horizon 20, one greedy sample. Each case runs in a fresh subprocess so peak memory is its own.
Prints wall time, generated tokens/s, peak memory, speedup, whether greedy outputs are identical,
and the fraction of a plain matmul's FLOP rate (measured in the same run) that the fast path achieves.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import KRONOS_SMALL, TOKENIZER_BASE, machine, matmul_gflops, random_small_models  # noqa: E402

CASES = {
    "W: b8 lb400 h20 s1 greedy": dict(batch=8, lookback=400, horizon=20, samples=1, greedy=True),
    "b64 lb256 h10 s8 sampled": dict(batch=64, lookback=256, horizon=10, samples=8, greedy=False),
    "ragged b16 lb50..400 h20": dict(batch=16, lookback=(50, 400), horizon=20, samples=1, greedy=True),
    "past window lb500 h30 b4": dict(batch=4, lookback=500, horizon=30, samples=1, greedy=True),
}


def _inputs(spec: dict, seed: int = 0):
    rng = np.random.default_rng(seed)
    lb = spec["lookback"]
    lengths = (rng.integers(lb[0], lb[1] + 1, spec["batch"]) if isinstance(lb, tuple) else [lb] * spec["batch"])
    xs, ps, fs = [], [], []
    for n in lengths:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        x = np.stack([close, close * 1.01, close * 0.99, close, rng.uniform(1e5, 2e5, n), rng.uniform(1e7, 2e7, n)], 1)
        t = np.arange(n + spec["horizon"])
        st = np.stack([np.zeros_like(t), np.zeros_like(t), t % 5, t % 28 + 1, (t // 21) % 12 + 1], 1)
        xs.append(x)
        ps.append(st[:n])
        fs.append(st[n:])
    return xs, ps, fs


def model_flops(spec: dict, lengths: list[int], ctx: int) -> float:
    """Analytic FLOPs of the fast path (linear layers + attention) for one call."""
    d, layers, ff = KRONOS_SMALL["d_model"], KRONOS_SMALL["n_layers"], KRONOS_SMALL["ff_dim"]
    per_tok = layers * (2 * (4 * d * d + 3 * d * ff)) + 2 * (2 * d * d + 2 * d * 1024) + 4 * d * d
    td, tff = TOKENIZER_BASE["d_model"], TOKENIZER_BASE["ff_dim"]
    tok_per = 3 * 2 * (4 * td * td + 3 * td * tff)
    h, s = spec["horizon"], spec["samples"]
    total = 0.0
    for n in lengths:
        m = min(n, ctx)
        total += n * tok_per + m * per_tok + layers * 2 * 2 * m * m * d  # encode + prefill
        for i in range(1, h):
            w = m + i if m + i <= ctx else ctx
            total += s * (per_tok + layers * 4 * w * d) if m + i <= ctx else s * (w * per_tok + layers * 2 * w * w * d)
        total += s * min(n + h, ctx) * tok_per  # decode
    return total


def _run_case(name: str, method: str, device: str, dtype: str, warmup: bool, q: mp.Queue) -> None:
    from kronos_quant import KronosPredictor, SamplingSpec

    torch.set_num_threads(torch.get_num_threads())
    spec = CASES[name]
    model, tok = random_small_models()
    pred = KronosPredictor(model, tok, device=device, max_context=512, method=method,
                           dtype=None if dtype == "float32" else dtype)
    xs, ps, fs = _inputs(spec)
    sampling = SamplingSpec(sample_count=spec["samples"], top_k=1 if spec["greedy"] else 0, top_p=0.9, seed=1)
    if warmup:  # one small call first: thread pools, allocator and kernel selection are not what we measure
        pred.forecast_arrays([xs[0][:32]], [ps[0][:32]], [fs[0][:2]], horizon=2, sampling=sampling, quiet=True)
    t0 = time.perf_counter()
    res = pred.forecast_arrays(xs, ps, fs, horizon=spec["horizon"], sampling=sampling, quiet=True)
    if device == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    import resource

    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    q.put(dict(wall=wall, peak_mb=peak, paths=res.paths, lengths=[len(x) for x in xs]))


def run(name: str, method: str, device: str = "cpu", dtype: str = "float32", warmup: bool = True) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_run_case, args=(name, method, device, dtype, warmup, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="*", default=list(CASES), help="subset of case names")
    ap.add_argument("--skip-reference", nargs="*", default=[], help="cases whose reference run is skipped")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    ap.add_argument("--no-warmup", action="store_true", help="time the first call in a fresh process (cold)")
    args = ap.parse_args()
    rate = matmul_gflops()
    print(f"machine: {machine()}")
    print(f"plain fp32 matmul (3200x512 @ 512x1024): {rate:.1f} GFLOP/s\n")
    header = f"{'case':30} {'path':9} {'wall s':>8} {'tok/s':>9} {'peak MB':>8} {'speedup':>8} {'identical':>9} {'%matmul':>8}"
    print(header)
    print("-" * len(header))
    rows = []
    for name in args.cases:
        spec = CASES[name]
        fast = run(name, "fast", warmup=not args.no_warmup)
        tokens = spec["batch"] * spec["samples"] * spec["horizon"]
        flops = model_flops(spec, fast["lengths"], 512)
        frac = flops / fast["wall"] / 1e9 / rate
        ref = None if name in args.skip_reference else run(name, "reference", warmup=not args.no_warmup)
        same = "-"
        if ref is not None:
            same = ("yes" if np.array_equal(fast["paths"], ref["paths"]) else
                    "tol" if np.allclose(fast["paths"], ref["paths"], rtol=1e-4) else "NO") if spec["greedy"] else "n/a"
            print(f"{name:30} {'reference':9} {ref['wall']:8.2f} {tokens / ref['wall']:9.1f} {ref['peak_mb']:8.0f}"
                  f" {'1.0x':>8} {'':>9} {'':>8}")
        speed = f"{ref['wall'] / fast['wall']:.1f}x" if ref else "-"
        print(f"{name:30} {'fast':9} {fast['wall']:8.2f} {tokens / fast['wall']:9.1f} {fast['peak_mb']:8.0f}"
              f" {speed:>8} {same:>9} {100 * frac:7.1f}%")
        rows.append(dict(case=name, fast_s=fast["wall"], ref_s=ref["wall"] if ref else None, tokens=tokens,
                         fast_peak_mb=fast["peak_mb"], ref_peak_mb=ref["peak_mb"] if ref else None,
                         identical=same, matmul_fraction=frac))
    if args.json:
        args.json.write_text(json.dumps(dict(machine=machine(), matmul_gflops=rate, rows=rows), indent=2))


if __name__ == "__main__":
    main()
