"""Predictor benchmark: the fast (KV-cached, batched) path against the reference path.

    python benchmarks/bench_predictor.py                 # CPU cases, each against the reference in the same run
    python benchmarks/bench_predictor.py --ablation      # plus the fast path without the oneDNN kernels
    python benchmarks/bench_predictor.py --gpu           # plus GPU throughput (needs CUDA)
    python benchmarks/bench_predictor.py --cases --original ../kronos-original   # W against the original only
    python benchmarks/bench_predictor.py --threads 1 ...  # one thread: ratios barely move when other jobs run

Workload W: Kronos-small + Kronos-Tokenizer-base dimensions (random weights), 8 series, lookback
400, horizon 20, one greedy sample. Each case runs in a fresh subprocess so peak memory is its own.
Prints wall time, generated tokens/s, peak memory, speedup, whether greedy outputs are identical,
and the fraction of a plain matmul's FLOP rate (measured in the same run) that the fast path achieves.

``--original PATH`` times the original implementation (a checkout of github.com/shiyu-coder/Kronos
at PATH, imported from there at run time; DEVELOPERS.md says how to get one) on W with the same
random weights, in one process with this project's fast path: both through ``predict_batch`` on
the same frames, calls interleaved, the median of ``--original-repeats`` each, and whether the
greedy outputs agree.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
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


def _run_case(spec: dict, method: str, device: str, dtype: str, warmup: bool, repeats: int, env: dict,
              q: mp.Queue) -> None:
    os.environ.update(env)
    from kronos_quant import KronosPredictor, SamplingSpec

    model, tok = random_small_models()
    pred = KronosPredictor(model, tok, device=device, max_context=512, method=method,
                           dtype=None if dtype == "float32" else dtype)
    xs, ps, fs = _inputs(spec)
    sampling = SamplingSpec(samples=spec["samples"], top_k=1 if spec["greedy"] else 0, top_p=0.9, seed=1)
    if warmup:  # one small call first: thread pools, allocator, weight packing are not what we measure
        pred.forecast_arrays([xs[0][:32]], [ps[0][:32]], [fs[0][:2]], horizon=2, sampling=sampling, quiet=True)
    walls = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = pred.forecast_arrays(xs, ps, fs, horizon=spec["horizon"], sampling=sampling, quiet=True)
        if device == "cuda":
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - t0)
    import resource

    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    q.put(dict(walls=walls, wall=float(np.median(walls)), peak_mb=peak,
               paths=res.paths if spec["batch"] <= 256 else None, lengths=[len(x) for x in xs],
               scale=np.stack([x.std(0) + np.abs(x.mean(0)) for x in xs]) if spec["batch"] <= 256 else None))


def run(name: str | dict, method: str, device: str = "cpu", dtype: str = "float32", warmup: bool = True,
        repeats: int = 1, env: dict | None = None) -> dict:
    """Run one case (a name in CASES, or a spec) in a fresh process; ``wall`` is the median of ``repeats`` calls."""
    spec = CASES[name] if isinstance(name, str) else name
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_run_case, args=(spec, method, device, dtype, warmup, repeats, env or {}, q))
    p.start()
    out = q.get()
    p.join()
    return out


def agreement(fast: dict, ref: dict, greedy: bool) -> str:
    """'yes' when bit-identical; else whether the tokens agree, with the largest difference in column scales.

    Scale = std + |mean| of the series' column. Float rounding shows as ~1e-7; a different token
    moves a value by a sizeable fraction of the std (> 1e-3).
    """
    if not greedy:
        return "n/a"
    if np.array_equal(fast["paths"], ref["paths"]):
        return "yes"
    err = float((np.abs(fast["paths"] - ref["paths"]) / fast["scale"][:, None, None, :]).max())
    return f"tokens, {err:.0e}" if err < 1e-4 else f"NO, {err:.0e}"


def load_original(path: Path):
    """The original project's ``model`` package, imported from a checkout at ``path``."""
    path = path.expanduser().resolve()
    if not (path / "model" / "kronos.py").is_file():
        raise SystemExit(f"--original {path}: no model/kronos.py there; pass a checkout of "
                         "github.com/shiyu-coder/Kronos (see DEVELOPERS.md)")
    for dep in ("einops", "huggingface_hub"):
        if importlib.util.find_spec(dep) is None:
            raise SystemExit(f"--original needs {dep!r}, which the original imports: pip install {dep}")
    sys.path.insert(0, str(path))
    try:
        original = importlib.import_module("model")
    finally:
        sys.path.remove(str(path))
    if Path(original.__file__).resolve().parent != path / "model":
        raise SystemExit(f"--original: 'import model' found {original.__file__}, not {path / 'model'}; "
                         "run from a directory without another 'model' package")
    return original


def _frames(spec: dict):
    """W as the original's API takes it: frames of OHLCV plus past and future timestamps (business days)."""
    import pandas as pd

    xs, _, _ = _inputs(spec)
    cols = ["open", "high", "low", "close", "volume", "amount"]
    dfs, past, future = [], [], []
    for x in xs:
        ts = pd.Series(pd.bdate_range("2015-01-02", periods=len(x) + spec["horizon"]))
        dfs.append(pd.DataFrame(x, columns=cols))
        past.append(ts[:len(x)].reset_index(drop=True))
        future.append(ts[len(x):].reset_index(drop=True))
    return xs, dfs, past, future


class _NumbaKernelsFlipped:
    """The fast path with ``predictor.streaming``'s decode kernels in the state opposite to this machine's
    default (on where ``auto`` leaves them off, and off where it turns them on), for the ablation arm."""

    def __init__(self, predictor) -> None:
        from kronos_quant.predictor import streaming

        self.predictor = predictor
        self.on = not streaming.available()
        if self.on and streaming._kernels() is None:
            raise SystemExit("--ablation: the Numba decode kernels do not compile here (is numba installed?)")
        self.label = "fast numba-on" if self.on else "fast numba-off"

    def predict_batch(self, *args, **kwargs):
        from kronos_quant.predictor import streaming

        default = streaming.available
        streaming.available = (lambda: True) if self.on else (lambda: False)
        try:
            return self.predictor.predict_batch(*args, **kwargs)
        finally:
            streaming.available = default


def against_original(path: Path, repeats: int, name: str = "W: b8 lb400 h20 s1 greedy",
                     ablation: bool = False) -> dict:
    """Time the original's ``predict_batch`` and this project's fast path on one case, in this process
    (``ablation``: also the fast path with the Numba decode kernels flipped from this machine's default,
    interleaved alike)."""
    from kronos_quant import KronosPredictor

    spec = CASES[name]
    original = load_original(path)
    model, tok = random_small_models()
    o_model, o_tok = original.Kronos(**KRONOS_SMALL).eval(), original.KronosTokenizer(**TOKENIZER_BASE).eval()
    o_model.load_state_dict(model.state_dict(), strict=True)  # the same random weights
    o_tok.load_state_dict(tok.state_dict(), strict=True)
    ours = KronosPredictor(model, tok, device="cpu", max_context=512)
    theirs = original.KronosPredictor(o_model, o_tok, device="cpu", max_context=512)
    xs, dfs, past, future = _frames(spec)
    kw = dict(T=1.0, top_k=1 if spec["greedy"] else 0, top_p=1.0 if spec["greedy"] else 0.9,
              sample_count=spec["samples"], verbose=False)
    flipped = _NumbaKernelsFlipped(ours) if ablation else None
    arms = [("original", theirs), ("fast", ours)] + ([(flipped.label, flipped)] if flipped else [])
    for _, pred in arms:  # warm-up: thread pools, allocator, weight packing, Numba's JIT are not what we measure
        pred.predict_batch([dfs[0][:32]], [past[0][:32]], [future[0][:2]], 2, **kw)
    walls: dict[str, list[float]] = {label: [] for label, _ in arms}
    outs = {}
    for _ in range(repeats):  # interleaved, so that load on a shared machine hits all alike
        for label, pred in arms:
            t0 = time.perf_counter()
            res = pred.predict_batch(dfs, past, future, spec["horizon"], **kw)
            walls[label].append(time.perf_counter() - t0)
            outs[label] = np.stack([r.to_numpy(np.float64) for r in res])  # (B, H, 6)
    scale = np.stack([x.std(0) + np.abs(x.mean(0)) for x in xs])[:, None, :]
    err = float((np.abs(outs["fast"] - outs["original"]) / scale).max())
    med = {k: float(np.median(v)) for k, v in walls.items()}
    return dict(case=name, walls=walls, median=med, ratio=med["original"] / med["fast"], max_scaled_diff=err,
                same_tokens=bool(err < 1e-4) if spec["greedy"] else None, original_path=str(path),
                original_commit=_git_head(path))


def _git_head(path: Path) -> str | None:
    import subprocess

    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def print_original(res: dict) -> None:
    n = len(res["walls"]["fast"])
    print(f"\n{res['case']} against the original ({res['original_path']} @ {res['original_commit'] or '?'}), "
          f"one process, {n} interleaved calls each")
    for label in res["walls"]:
        w = res["walls"][label]
        print(f"  {label:14} median {res['median'][label]:7.2f} s   min {min(w):7.2f}   max {max(w):7.2f}   "
              f"all {' '.join(f'{x:.2f}' for x in w)}")
    agree = "n/a (sampled)" if res["same_tokens"] is None else (
        f"same greedy tokens (paths differ by <= {res['max_scaled_diff']:.0e} of each column's scale)"
        if res["same_tokens"] else f"DIFFERENT tokens (max difference {res['max_scaled_diff']:.2e} of the scale)")
    fastest = min(res["walls"]["original"]) / min(res["walls"]["fast"])
    print(f"  speedup (median original / median fast): {res['ratio']:.1f}x (fastest calls: {fastest:.1f}x); {agree}")
    for label, state in (("fast numba-off", "without"), ("fast numba-on", "with")):
        if label in res["median"]:
            print(f"  {state} the Numba decode kernels (not this machine's default): "
                  f"{res['median']['original'] / res['median'][label]:.1f}x")


def gpu_throughput(device: str, dtypes: list[str], batches: list[int], total: int) -> None:
    """Series x steps per second for large batches, and the time for ``total`` forecasts (lookback 256, horizon 5)."""
    print(f"\nthroughput on {device}: lookback 256, horizon 5, 1 sample, greedy")
    print(f"{'dtype':9} {'batch':>6} {'wall s':>8} {'series*steps/s':>15} {'peak MB':>8}")
    for dtype in dtypes:
        for batch in batches:
            spec = dict(batch=batch, lookback=256, horizon=5, samples=1, greedy=True)
            r = run(spec, "fast", device=device, dtype=dtype, repeats=2)
            print(f"{dtype:9} {batch:6d} {r['wall']:8.2f} {batch * 5 / r['wall']:15.0f} {r['peak_mb']:8.0f}")
        spec = dict(batch=total, lookback=256, horizon=5, samples=1, greedy=True)
        r = run(spec, "fast", device=device, dtype=dtype, repeats=1)
        print(f"{dtype:9} {total:6d} forecasts in one call: {r['wall']:.1f} s ({total / r['wall']:.0f} forecasts/s, "
              f"micro-batched automatically)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="*", default=list(CASES), help="subset of case names")
    ap.add_argument("--skip-reference", nargs="*", default=[], help="cases whose reference run is skipped")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls of the fast path per case (median reported)")
    ap.add_argument("--ablation", action="store_true",
                    help="also time the fast path without the oneDNN kernels (KRONOS_QUANT_ONEDNN=0) and, "
                    "with --original, with the Numba decode kernels flipped from this machine's default "
                    "(KRONOS_QUANT_NUMBA=auto)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    ap.add_argument("--no-warmup", action="store_true", help="time the first call in a fresh process (cold)")
    ap.add_argument("--gpu", action="store_true", help="also measure GPU throughput (needs CUDA)")
    ap.add_argument("--gpu-device", default="cuda", help="device for --gpu (cpu with tiny sizes checks the script)")
    ap.add_argument("--gpu-batches", type=int, nargs="*", default=[256, 1024, 4096])
    ap.add_argument("--gpu-total", type=int, default=125_000, help="forecasts in the one-call throughput run")
    ap.add_argument("--gpu-dtypes", nargs="*", default=["bfloat16", "float32"])
    ap.add_argument("--original", type=Path, metavar="PATH",
                    help="also time W on the original implementation, a checkout of shiyu-coder/Kronos at PATH")
    ap.add_argument("--original-repeats", type=int, default=5, help="timed calls of each side for --original")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice, one per core); 1 makes "
                    "ratios far less sensitive to other jobs on a shared machine")
    args = ap.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the spawned case processes
        torch.set_num_threads(args.threads)
    rate = matmul_gflops()
    print(f"machine: {machine()}")
    print(f"plain fp32 matmul (3200x512 @ 512x1024): {rate:.1f} GFLOP/s\n")
    header = (f"{'case':30} {'path':12} {'wall s':>8} {'min s':>7} {'tok/s':>9} {'peak MB':>8} {'speedup':>8} "
              f"{'identical':>15} {'%matmul':>8}")
    print(header)
    print("-" * len(header))
    rows = []
    warm = not args.no_warmup
    for name in args.cases:
        spec = CASES[name]
        fast = run(name, "fast", warmup=warm, repeats=args.repeats)
        tokens = spec["batch"] * spec["samples"] * spec["horizon"]
        flops = model_flops(spec, fast["lengths"], 512)
        frac = flops / fast["wall"] / 1e9 / rate
        plain = run(name, "fast", warmup=warm, repeats=args.repeats, env={"KRONOS_QUANT_ONEDNN": "0"}) \
            if args.ablation else None
        ref = None if name in args.skip_reference else run(name, "reference", warmup=warm)
        same = "-"
        if ref is not None:
            same = agreement(fast, ref, spec["greedy"])
            print(f"{name:30} {'reference':12} {ref['wall']:8.2f} {min(ref['walls']):7.2f} {tokens / ref['wall']:9.1f}"
                  f" {ref['peak_mb']:8.0f} {'1.0x':>8} {'':>15} {'':>8}")
        for label, res in (("fast", fast), ("fast no-dnn", plain)):
            if res is None:
                continue
            speed = f"{ref['wall'] / res['wall']:.1f}x" if ref else "-"
            print(f"{name:30} {label:12} {res['wall']:8.2f} {min(res['walls']):7.2f} {tokens / res['wall']:9.1f}"
                  f" {res['peak_mb']:8.0f} {speed:>8} {same if res is fast else '':>15}"
                  f" {100 * flops / res['wall'] / 1e9 / rate:7.1f}%")
        rows.append(dict(case=name, fast_s=fast["wall"], fast_walls=fast["walls"], ref_s=ref["wall"] if ref else None,
                         plain_s=plain["wall"] if plain else None, tokens=tokens, fast_peak_mb=fast["peak_mb"],
                         ref_peak_mb=ref["peak_mb"] if ref else None, identical=same, matmul_fraction=frac))
    original = None
    if args.original is not None:
        original = against_original(args.original, args.original_repeats, ablation=args.ablation)
        print_original(original)
    if args.gpu:
        if args.gpu_device == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--gpu needs CUDA; this machine has none (use --gpu-device cpu with small sizes to "
                             "check the script)")
        gpu_throughput(args.gpu_device, args.gpu_dtypes, args.gpu_batches, args.gpu_total)
    if args.json:
        args.json.write_text(json.dumps(dict(machine=machine(), matmul_gflops=rate, rows=rows, original=original),
                                        indent=2))


if __name__ == "__main__":
    main()
