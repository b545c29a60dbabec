"""A strategy's inputs: its data, its forecaster, its rolling forecasts and the provenance of a run.

``load_strategy_data`` (synthetic, bundled or file data, validated and conformed to the market),
``make_forecaster`` / ``checked_forecaster`` (the model or a baseline, after the device and look-back
checks), ``rolling_spec`` / ``forecast_table`` (the engine's rolling forecasts, cached, local or on
Ray) and ``build_provenance`` (what every output records: config file, model identity, seed, data
fingerprint, versions).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

import kronos_quant.market_context as mkt
from kronos_quant._version import __version__
from kronos_quant.config import StrategyConfig
from kronos_quant.errors import DataError
from kronos_quant.markets import get_market
from kronos_quant.run_checks import check_device, check_lookback
from kronos_quant.schema import SamplingSpec

__all__ = ["load_strategy_data", "make_forecaster", "checked_forecaster", "rolling_spec", "forecast_table",
           "build_provenance"]


def _resolve_path(cfg: StrategyConfig, path: str) -> Path:
    p = Path(path).expanduser()
    if p.exists() or p.is_absolute() or cfg.source_path in (None, "<defaults>", "<config>"):
        return p
    beside = Path(cfg.source_path).parent / p  # relative to the config file
    return beside if beside.exists() else p


def load_strategy_data(cfg: StrategyConfig, *, end: Any = None) -> tuple[pl.DataFrame, Any]:
    """The validated panel of a strategy (synthetic, bundled or from a file), conformed to its market
    (``market_context.conform_to_market``), and its ValidationReport."""
    from kronos_quant.data import hint_zone

    with hint_zone(get_market(cfg.market).tz):  # time-zone hints suggest the market's zone
        panel, report = _load_data(cfg, end=end)
    return mkt.conform_to_market(cfg, panel, report), report


def _load_data(cfg: StrategyConfig, *, end: Any) -> tuple[pl.DataFrame, Any]:
    """The validated panel and its report, before the market's clock is applied."""
    from kronos_quant.data import load_panel_with_report, synthetic_market, validate_panel
    from kronos_quant.data.bounds import parse_bound

    d, span = cfg.data, ""
    end = end if end is not None else d.end
    end = None if end is None else pd.Timestamp(end).date()  # the end bound includes its whole day
    if d.source == "synthetic":
        s = d.synthetic
        panel = synthetic_market(s.n_instruments, s.n_bars, mode=s.mode, strength=s.strength if s.mode == "planted"
                                 else None, start=s.start, seed=s.seed)
        if cfg.universe.instruments:
            panel = panel.filter(pl.col("instrument").is_in(cfg.universe.instruments))
        if panel.height:
            span = f"; the data runs from {panel['timestamp'].min():%Y-%m-%d} to {panel['timestamp'].max():%Y-%m-%d}"
        lo, hi = parse_bound(d.start, tz=None, is_end=False), parse_bound(end, tz=None, is_end=True)
        if lo is not None:
            panel = panel.filter(pl.col("timestamp") >= lo.to_pydatetime())
        if hi is not None:
            panel = panel.filter(pl.col("timestamp") <= hi.to_pydatetime())
        panel, report = validate_panel(panel, source="synthetic market", **d.validation.options())
    elif d.source == "builtin":
        from kronos_quant.data.builtin import load_builtin_with_report

        panel, report = load_builtin_with_report(d.name or "", instruments=cfg.universe.instruments, start=d.start,
                                                 end=end, **d.load_options())
    else:
        path = _resolve_path(cfg, d.path or "")
        if not path.exists():
            raise DataError(f"data.path: {path} does not exist (from {cfg.source_path}); point data.path at a CSV/"
                            "Parquet file or a directory of per-instrument files")
        panel, report = load_panel_with_report(path, instruments=cfg.universe.instruments, start=d.start, end=end,
                                               **d.load_options())
    if panel.height == 0:
        raise DataError(f"{cfg.source_path}: no data left after the filters (data.start, data.end or --asof, "
                        f"universe.instruments){span}")
    return panel, report


def make_forecaster(cfg: StrategyConfig) -> Any:
    """The strategy's forecaster (Kronos loaded lazily, or a baseline)."""
    from kronos_quant.forecasters import forecaster_from_config

    return forecaster_from_config(cfg.model)


def checked_forecaster(cfg: StrategyConfig) -> Any:
    """``make_forecaster(cfg)`` after ``check_device``, with the look-back checked against the model's
    context (``run_checks.check_lookback``): every workflow calls it before loading data or forecasting."""
    check_device(cfg)
    forecaster = make_forecaster(cfg)
    check_lookback(cfg, forecaster)
    return forecaster


def rolling_spec(cfg: StrategyConfig, *, rebalance: Any = None, start: Any = None, end: Any = None) -> Any:
    """The ``engine.RollingSpec`` of the strategy's forecasts over [start, end] (default: the backtest period)."""
    from kronos_quant.engine import RollingSpec

    f = cfg.forecast
    return RollingSpec(lookback=f.lookback, horizon=f.horizon, rebalance=f.rebalance if rebalance is None else rebalance,
                       min_history=cfg.universe.min_history, start=cfg.backtest.start if start is None else start,
                       end=cfg.backtest.end if end is None else end,
                       sampling=SamplingSpec(samples=f.samples, temperature=f.T, top_k=f.top_k, top_p=f.top_p,
                                             seed=f.seed),
                       quantile_levels=tuple(f.quantiles), keep_samples=f.keep_samples, batch_series=f.batch_series)


def forecast_table(cfg: StrategyConfig, panel: pl.DataFrame, forecaster: Any = None, *, rebalance: Any = None,
                   start: Any = None, end: Any = None, quiet: bool | None = None,
                   breaks: Mapping[str, Sequence[Any]] | None = None, backend: str | None = None
                   ) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Rolling forecasts of the strategy over [start, end] (default: the backtest period), with the cache,
    on ``backend`` (default ``forecast.backend``: local or ray). forecaster: default ``make_forecaster(cfg)``.
    breaks: the history breaks of the panel (``ValidationReport.segment_starts()``): no window spans one.

    Returns (forecast table, stats with cache hits/misses, seconds, the plan's counts of windows cut
    or skipped at breaks (``plan``) and why instruments got no forecast (``unplanned``)).
    """
    from kronos_quant.data.arrays import panel_arrays
    from kronos_quant.engine import ForecastCache, LocalExecutor, plan_rolling, run_rolling

    f = cfg.forecast
    cache = ForecastCache(f.cache_dir) if f.cache_dir else None
    executor: Any = LocalExecutor()
    if (backend or f.backend) == "ray":
        from kronos_quant.distributed import ray_executor

        executor = ray_executor(cfg)
    t0 = time.perf_counter()
    spec = rolling_spec(cfg, rebalance=rebalance, start=start, end=end)
    data = panel_arrays(panel, breaks=breaks, calendar=mkt.market_calendar(cfg, panel))  # future skips holidays
    plan = plan_rolling(data, spec)
    table = run_rolling(spec, data, make_forecaster(cfg) if forecaster is None else forecaster, executor,
                        cache=cache, quiet=quiet, plan=plan)
    stats = {"seconds": time.perf_counter() - t0, "rows": table.height,
             "forecasts": table.select(["instrument", "asof"]).unique().height if table.height else 0,
             "plan": plan.counts(), "unplanned": dict(plan.unplanned)}
    if cache is not None:
        stats.update(cache_hits=cache.stats.hits, cache_misses=cache.stats.misses)
    return table, stats



def build_provenance(cfg: StrategyConfig, panel: pl.DataFrame, forecaster: Any, report: Any, **extra: Any) -> dict[str, Any]:
    """What an output records about its run: kronos-quant version, config file, model identity, seed,
    data fingerprint and span, validation report, market, library versions, plus ``extra``."""
    import torch

    from kronos_quant.data import data_fingerprint

    return {
        "kronos_quant": __version__, "config_file": cfg.source_path, "model": forecaster.identity,
        "seed": cfg.forecast.seed, "data_fingerprint": data_fingerprint(panel),
        "data": {"instruments": panel["instrument"].n_unique(), "rows": panel.height,
                 "first": str(panel["timestamp"].min()), "last": str(panel["timestamp"].max())},
        "validation": report.to_dict() if hasattr(report, "to_dict") else None,
        "market": mkt.market_provenance(cfg, panel),
        "python": platform.python_version(), "torch": torch.__version__, "polars": pl.__version__,
        "pandas": pd.__version__, **extra,
    }

