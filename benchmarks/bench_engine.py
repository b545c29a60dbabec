"""Benchmark the rolling forecast engine on real S&P 500 daily data.

Run: ``python benchmarks/bench_engine.py`` (options: ``--help``; ``--forecaster random_walk`` or
``--instruments 8`` for a quick run). Default forecaster: the bundled kronos-demo model.

Workload: ``../shared/data/sp500_daily_2013_2017.parquet`` (100 tickers; amount = volume x
mean(OHLC) added by the data layer), lookback 256, horizon 5, weekly rebalance (the last
trading day of each week) across 2016-2017. Three timed phases:

1. load: reading and validating the panel;
2. cold: ``rolling_forecast`` into an empty forecast cache (the model runs for every series);
3. warm: the same call again with a fresh ``ForecastCache`` on the same directory (no model work).

Reported: forecasts/s, model time vs time spent outside the model (windowing, batching,
summarising, cache I/O; goal < 10%, also shown with loading included), warm/cold time (goal
< 5%) and peak memory (process RSS high-water mark; CUDA peak when on a GPU).
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from kronos_quant.baselines import HistoricalDriftForecaster, LinearForecaster, RandomWalkForecaster
from kronos_quant.engine import ForecastCache, rolling_forecast
from kronos_quant.schema import Forecaster, SamplingSpec

REPO = Path(__file__).resolve().parents[1]

DATA = REPO.parent / "shared" / "data" / "sp500_daily_2013_2017.parquet"
TINY = REPO.parent / "shared" / "fixtures" / "kronos-reference" / "tiny-a"
KINDS = ("kronos-demo", "random_walk", "drift", "linear", "kronos-tiny")


def make_forecaster(kind: str, *, device: str | None = None) -> Forecaster:
    """The forecaster to benchmark: ``kronos-demo`` (the bundled 0.9M-parameter Kronos), a baseline,
    or ``kronos-tiny`` (the tiny-a reference checkpoint from ../shared/fixtures, 2 layers, d_model 32)."""
    if kind == "random_walk":
        return RandomWalkForecaster()
    if kind == "drift":
        return HistoricalDriftForecaster()
    if kind == "linear":
        return LinearForecaster()
    if kind == "kronos-demo":
        from kronos_quant.predictor import KronosPredictor

        return KronosPredictor.from_pretrained("kronos-demo", device=device)
    if kind == "kronos-tiny":
        from kronos_quant import Kronos, KronosTokenizer
        from kronos_quant.predictor import BatchPredictor

        if not TINY.is_dir():
            raise SystemExit(f"{TINY} not found: kronos-tiny needs the ../shared reference fixtures")
        model = Kronos.from_pretrained(str(TINY / "predictor"))
        tokenizer = KronosTokenizer.from_pretrained(str(TINY / "tokenizer"))
        return BatchPredictor(model, tokenizer, device=device)
    raise SystemExit(f"unknown forecaster kind {kind!r}; choose one of {KINDS}")


class TimedForecaster:
    """Delegates to a forecaster and accumulates the wall time spent inside it."""

    def __init__(self, inner: Forecaster) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0
        self.series = 0

    @property
    def identity(self) -> dict[str, Any]:
        return self.inner.identity

    def forecast_arrays(self, series, past_stamps, future_stamps, **kwargs):  # noqa: ANN001
        t0 = time.perf_counter()
        try:
            return self.inner.forecast_arrays(series, past_stamps, future_stamps, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1
            self.series += len(series)


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forecaster", choices=KINDS, default="kronos-demo")
    parser.add_argument("--device", default=None, help="torch device for Kronos (default: auto)")
    parser.add_argument("--instruments", type=int, default=None, help="use only the first N tickers")
    parser.add_argument("--lookback", type=int, default=256)
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1, help="sample paths per series")
    parser.add_argument("--batch", type=int, default=128, help="max series per forecaster call")
    parser.add_argument("--start", default="2016-01-01")
    parser.add_argument("--end", default="2017-12-31")
    parser.add_argument("--cache-dir", default=None, help="default: a temporary directory, removed afterwards")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not DATA.exists():
        print(f"{DATA} not found: the benchmark needs ../shared/data beside this checkout", file=sys.stderr)
        return 2

    rss_start = rss_mb()
    t0 = time.perf_counter()
    from kronos_quant.data import load_panel

    panel = load_panel(DATA, policy="drop")
    if args.instruments:
        keep = sorted(panel["instrument"].unique().to_list())[: args.instruments]
        panel = panel.filter(panel["instrument"].is_in(keep))
    load_s = time.perf_counter() - t0

    forecaster = TimedForecaster(make_forecaster(args.forecaster, device=args.device))
    # each Friday (a date: the whole day) -> the last trading day on or before it
    weekly = [d.date() for d in pd.date_range(args.start, args.end, freq="W-FRI")]
    sampling = SamplingSpec(samples=args.samples, seed=0)
    kwargs: dict[str, Any] = dict(lookback=args.lookback, horizon=args.horizon, rebalance=weekly,
                                  start=args.start, end=args.end, sampling=sampling, batch_series=args.batch)
    try:
        import torch

        cuda = torch.cuda.is_available() and args.forecaster == "kronos-tiny"
        if cuda:
            torch.cuda.reset_peak_memory_stats()
    except ImportError:
        cuda = False

    with tempfile.TemporaryDirectory(prefix="kq-bench-cache-") as tmp:
        cache_dir = Path(args.cache_dir or tmp)
        t1 = time.perf_counter()
        cold_cache = ForecastCache(cache_dir)
        table = rolling_forecast(panel, forecaster, cache=cold_cache, **kwargs)
        cold_s = time.perf_counter() - t1
        model_s, n_calls = forecaster.seconds, forecaster.calls

        warm_model = TimedForecaster(forecaster.inner)
        t2 = time.perf_counter()
        warm_cache = ForecastCache(cache_dir)
        warm = rolling_forecast(panel, warm_model, cache=warm_cache, **kwargs)
        warm_s = time.perf_counter() - t2
        same = warm.equals(table)

    n_forecasts = table.select("instrument", "asof").unique().height
    outside = cold_s - model_s
    rows = [
        ("forecaster", args.forecaster, ""),
        ("panel", f"{panel['instrument'].n_unique()} instruments, {panel.height} bars", ""),
        ("forecasts (series x as-of)", f"{n_forecasts} ({table.height} rows, {n_calls} model calls)", ""),
        ("load + validate", f"{load_s:.2f} s", ""),
        ("cold run", f"{cold_s:.2f} s", ""),
        ("  inside the model", f"{model_s:.2f} s", ""),
        ("  outside the model", f"{outside:.2f} s", f"{outside / cold_s:.1%} of cold run (goal < 10%)"),
        ("  outside incl. loading", f"{outside + load_s:.2f} s",
         f"{(outside + load_s) / (cold_s + load_s):.1%} of load + cold run"),
        ("forecasts / s (cold)", f"{n_forecasts / cold_s:.1f}", f"model only: {n_forecasts / max(model_s, 1e-9):.1f}"),
        ("warm rerun", f"{warm_s:.2f} s", f"{warm_s / cold_s:.1%} of cold (goal < 5%)"),
        ("warm rerun model calls", f"{warm_model.calls}", f"cache hits {warm_cache.stats.hits}, misses "
                                                          f"{warm_cache.stats.misses}, identical table: {same}"),
        ("peak RSS", f"{rss_mb():.0f} MiB", f"{rss_mb() - rss_start:.0f} MiB above start-up"),
    ]
    if cuda:
        import torch

        rows.append(("peak CUDA memory", f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB", ""))
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"{'metric':<{width}}  {'value':<{vwidth}}  ratio / note")
    print("-" * (width + vwidth + 40))
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<{vwidth}}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
