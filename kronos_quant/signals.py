"""Signals: forecast table (or panel) -> wide score frames, and cross-sectional transforms.

Owns the named signal generators (an explicit registry, ``SIGNALS``; their parameter schemas
live in ``kronos_quant.registry`` so configs are checked at load time) and the cross-sectional
transforms (``TRANSFORMS``: rank, zscore, winsorize, demean). Long tables become wide pandas
frames (index = dates, columns = instruments) here; the panel's own wide view is
``data.panel_to_wide``.

A score frame has one row per as-of date (the forecast's ``asof`` or, for ``momentum``, the bar
timestamp) and one column per instrument; a larger score means a more attractive instrument.
Scores at date t use only the forecast made at t (or bars <= t). Knows nothing about weights,
trading, costs, metrics, files or plots.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import polars as pl
from scipy.stats import norm

from kronos_quant.data.panel import panel_to_wide
from kronos_quant.errors import DataError
from kronos_quant.registry import check_params
from kronos_quant.schema import FIELDS, central_intervals, quantile_column, quantile_columns, sample_matrix

__all__ = [
    "SIGNALS",
    "TRANSFORMS",
    "SignalSpec",
    "as_pandas",
    "expected_return",
    "prob_up",
    "risk_adjusted_return",
    "quantile_return",
    "upside_downside",
    "path_signal",
    "momentum",
    "forward_returns",
    "cs_rank",
    "cs_zscore",
    "cs_winsorize",
    "cs_demean",
    "apply_transforms",
    "compute_signal",
]

logger = logging.getLogger(__name__)

PathKind = Literal["mean", "median"]
_KEYS = ("instrument", "asof", "step")


# ----------------------------------------------------------------------------- frame helpers


def as_pandas(frame: Any, *, name: str) -> pd.DataFrame:
    """A pandas copy of a polars or pandas DataFrame; ValueError naming ``name`` for anything else."""
    if isinstance(frame, pd.DataFrame):
        return frame.copy()
    if hasattr(frame, "to_pandas") and hasattr(frame, "columns"):
        return frame.to_pandas()
    raise ValueError(f"`{name}` must be a polars or pandas DataFrame, got {type(frame).__name__}")


def _require_columns(df: pd.DataFrame, columns: Sequence[str], *, name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{name} is missing column(s) {missing}; it has {list(df.columns)}. "
            "Build the forecast table with the engine, or add the columns named in kronos_quant.schema."
        )


def _forecast_frame(forecasts: Any, columns: Sequence[str]) -> pd.DataFrame:
    """The forecast table as pandas with the key columns and ``columns`` validated; asof as datetime."""
    if forecasts is None:
        raise ValueError("this signal needs `forecasts` (the forecast table); pass forecasts=...")
    df = as_pandas(forecasts, name="forecasts")
    _require_columns(df, (*_KEYS, "last_close", *columns), name="forecast table")
    if df.duplicated(list(_KEYS)).any():
        dup = df.loc[df.duplicated(list(_KEYS), keep=False), list(_KEYS)]
        raise DataError(f"forecast table has duplicate (instrument, asof, step) rows, e.g. {dup.head(3).to_dict('records')}")
    df["asof"] = pd.to_datetime(df["asof"])
    return df


def _at_step(df: pd.DataFrame, step: int | None) -> pd.DataFrame:
    """Rows of one step per (instrument, asof): ``step`` (1-based) or, when None, the last step."""
    if step is None:
        last = df.groupby(["instrument", "asof"])["step"].transform("max")
        return df.loc[df["step"] == last]
    horizon = int(df["step"].max())
    if not 1 <= step <= horizon:
        raise ValueError(f"step must lie in 1..{horizon} (the forecast horizon), got {step}")
    return df.loc[df["step"] == step]


def _wide(rows: pd.DataFrame, values: pd.Series | np.ndarray) -> pd.DataFrame:
    """Pivot per-row ``values`` to (dates, instruments): index asof (sorted), columns instrument (sorted)."""
    tmp = pd.DataFrame({"asof": rows["asof"].to_numpy(), "instrument": rows["instrument"].to_numpy(),
                        "score": np.asarray(values, dtype=np.float64)})
    wide = tmp.pivot(index="asof", columns="instrument", values="score").sort_index()
    wide = wide.reindex(sorted(wide.columns), axis=1)
    wide.columns.name = "instrument"
    return wide.replace([np.inf, -np.inf], np.nan)


def _path_column(path: str) -> str:
    if path not in ("mean", "median"):
        raise ValueError(f"path must be 'mean' or 'median', got {path!r}")
    return f"close_{path}"


# ----------------------------------------------------------------------------- forecast signals


def expected_return(forecasts: Any, *, path: PathKind = "mean", step: int | None = None) -> pd.DataFrame:
    """Predicted close at ``step`` (default: last step) over last close, minus 1, from the mean or median path."""
    col = _path_column(path)
    rows = _at_step(_forecast_frame(forecasts, [col]), step)
    return _wide(rows, rows[col] / rows["last_close"] - 1.0)


def prob_up(forecasts: Any, *, step: int | None = None) -> pd.DataFrame:
    """P[close at ``step`` > last close] (the table's ``prob_up``), in [0, 1]."""
    rows = _at_step(_forecast_frame(forecasts, ["prob_up"]), step)
    return _wide(rows, rows["prob_up"])


def _sample_std(rows: pd.DataFrame) -> np.ndarray:
    """(n,) std (ddof=1) of sample returns per row from ``close_samples``; NaN where fewer than 2 samples."""
    returns = sample_matrix(rows["close_samples"]) / rows["last_close"].to_numpy()[:, None] - 1.0  # (n, S)
    returns[~np.isfinite(returns)] = np.nan
    enough = (~np.isnan(returns)).sum(axis=1) >= 2
    out = np.full(len(rows), np.nan)
    if enough.any():
        out[enough] = np.nanstd(returns[enough], axis=1, ddof=1)
    return out


def _quantile_std(rows: pd.DataFrame, columns: dict[float, str]) -> np.ndarray:
    """(n,) normal-equivalent std of the return from the widest central interval of the close quantiles.

    sigma = (Q(1-a) - Q(a)) / last_close / (z(1-a) - z(a)); e.g. q5/q95 divides by 2 * 1.645.
    """
    intervals = central_intervals(columns)
    if not intervals:
        raise DataError(
            "risk_adjusted_return needs close_samples or a symmetric pair of close quantile columns "
            f"(e.g. close_q5 and close_q95); found quantile columns {sorted(columns.values())}"
        )
    a, b = intervals[max(intervals)]
    hi, lo = rows[columns[b]].to_numpy(), rows[columns[a]].to_numpy()
    return (hi - lo) / rows["last_close"].to_numpy() / (norm.ppf(b) - norm.ppf(a))


def risk_adjusted_return(forecasts: Any, *, step: int | None = None) -> pd.DataFrame:
    """Mean expected return at ``step`` over the dispersion of the predicted return.

    Dispersion: the std of the sample returns (``close_samples``, when the column is present and
    a row has >= 2 samples); otherwise the normal-equivalent std from the widest symmetric pair of
    close quantiles (q5/q95 spread / 3.29). Rows with zero dispersion get NaN.
    """
    df = _forecast_frame(forecasts, ["close_mean"])
    rows = _at_step(df, step)
    sigma = np.full(len(rows), np.nan)
    if "close_samples" in rows.columns:
        sigma = _sample_std(rows)
    if np.isnan(sigma).any():
        fallback = _quantile_std(rows, quantile_columns(rows.columns))
        sigma = np.where(np.isnan(sigma), fallback, sigma)
    mean_ret = rows["close_mean"].to_numpy() / rows["last_close"].to_numpy() - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(sigma > 0, mean_ret / sigma, np.nan)
    return _wide(rows, score)


def quantile_return(forecasts: Any, *, q: float = 0.5, step: int | None = None) -> pd.DataFrame:
    """The ``q``-quantile of the predicted close at ``step`` over last close, minus 1 (q=0.1: a downside view)."""
    col = quantile_column("close", q)
    df = _forecast_frame(forecasts, [])
    if col not in df.columns:
        raise DataError(f"forecast table has no column {col!r} for q={q}; available: {sorted(quantile_columns(df.columns).values())}")
    rows = _at_step(df, step)
    return _wide(rows, rows[col] / rows["last_close"] - 1.0)


def upside_downside(forecasts: Any, *, q_high: float = 0.9, q_low: float = 0.1, step: int | None = None) -> pd.DataFrame:
    """Upside minus downside: (Q(q_high) - last) / last - (last - Q(q_low)) / last, at ``step``."""
    if not q_low < 0.5 < q_high:
        raise ValueError(f"need q_low < 0.5 < q_high, got q_low={q_low}, q_high={q_high}")
    hi_col, lo_col = quantile_column("close", q_high), quantile_column("close", q_low)
    df = _forecast_frame(forecasts, [])
    for col in (hi_col, lo_col):
        if col not in df.columns:
            raise DataError(f"forecast table has no column {col!r}; available: {sorted(quantile_columns(df.columns).values())}")
    rows = _at_step(df, step)
    last = rows["last_close"]
    return _wide(rows, (rows[hi_col] - last) / last - (last - rows[lo_col]) / last)


def path_signal(forecasts: Any, *, stat: Literal["last", "mean", "max", "min"] = "last",
                path: PathKind = "mean") -> pd.DataFrame:
    """qlib-style path statistic: last/mean/max/min over steps 1..H of predicted close / last close - 1."""
    col = _path_column(path)
    if stat not in ("last", "mean", "max", "min"):
        raise ValueError(f"stat must be one of 'last', 'mean', 'max', 'min', got {stat!r}")
    df = _forecast_frame(forecasts, [col]).sort_values(["instrument", "asof", "step"])
    df["_ret"] = df[col] / df["last_close"] - 1.0
    grouped = df.groupby(["instrument", "asof"], sort=False)["_ret"]
    agg = grouped.last() if stat == "last" else grouped.agg(stat)
    agg = agg.reset_index()
    return _wide(agg, agg["_ret"])


def _path_stat(stat: Literal["last", "mean", "max", "min"]) -> Callable[..., pd.DataFrame]:
    def signal(forecasts: Any, *, path: PathKind = "mean") -> pd.DataFrame:
        return path_signal(forecasts, stat=stat, path=path)

    signal.__name__ = f"path_{stat}"
    signal.__doc__ = f"The {stat} predicted close over steps 1..H relative to last close (see path_signal)."
    return signal


# ----------------------------------------------------------------------------- panel signals


def momentum(panel: pl.DataFrame, *, lookback: int = 20, skip: int = 0) -> pd.DataFrame:
    """Price momentum: close[t - skip] / close[t - skip - lookback] - 1, per instrument on its own bars.

    panel: the standard panel (``kronos_quant.data``). Uses only bars <= t. The first ``skip + lookback`` bars of each instrument are NaN.
    Returns (T, N): index timestamp (every bar of the panel), columns instruments.
    """
    if lookback < 1 or skip < 0:
        raise ValueError(f"need lookback >= 1 and skip >= 0, got lookback={lookback}, skip={skip}")
    if panel is None:
        raise ValueError("momentum needs `panel` (the long OHLCV panel); pass panel=...")
    close = pl.col("close")
    wide = panel_to_wide(panel, close.shift(skip) / close.shift(skip + lookback) - 1.0)
    wide.index.name = "asof"
    return wide.replace([np.inf, -np.inf], np.nan)


def forward_returns(panel: pl.DataFrame, *, horizon: int = 1, field: str = "close") -> pd.DataFrame:
    """Evaluation labels, never a signal input: field[t + horizon] / field[t] - 1 per instrument.

    panel: the standard panel (``kronos_quant.data``).
    Counted on each instrument's own bars; the last ``horizon`` bars are NaN. Returns (T, N):
    index timestamp (named asof, to align with score frames), columns instruments. Use it with
    ``metrics.information_coefficient(scores, forward_returns(panel))``.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if panel is None:
        raise ValueError("forward_returns needs `panel` (the long OHLCV panel)")
    if field not in FIELDS:
        raise ValueError(f"field must be one of {list(FIELDS)}, got {field!r}")
    price = pl.col(field)
    wide = panel_to_wide(panel, price.shift(-horizon) / price - 1.0)
    wide.index.name = "asof"
    return wide.replace([np.inf, -np.inf], np.nan)


# ----------------------------------------------------------------------------- transforms


def cs_rank(scores: pd.DataFrame) -> pd.DataFrame:
    """Cross-sectional percentile rank per row, in (0, 1]; ties get their average rank; NaN stays NaN."""
    return scores.rank(axis=1, pct=True)


def cs_zscore(scores: pd.DataFrame) -> pd.DataFrame:
    """(x - row mean) / row std (ddof=0); rows with zero spread become 0 where x is finite."""
    mean = scores.mean(axis=1)
    std = scores.std(axis=1, ddof=0)
    z = scores.sub(mean, axis=0).div(std.where(std > 0), axis=0)
    flat = ~(std > 0).to_numpy()[:, None] & scores.notna().to_numpy()  # (T, N)
    return z.mask(flat, 0.0)


def cs_winsorize(scores: pd.DataFrame, *, lower: float = 0.05, upper: float = 0.95) -> pd.DataFrame:
    """Clip each row at its own ``lower`` and ``upper`` quantiles (linear interpolation)."""
    if not 0.0 <= lower < upper <= 1.0:
        raise ValueError(f"need 0 <= lower < upper <= 1, got lower={lower}, upper={upper}")
    lo = scores.quantile(lower, axis=1)
    hi = scores.quantile(upper, axis=1)
    return scores.clip(lower=lo, upper=hi, axis=0)


def cs_demean(scores: pd.DataFrame) -> pd.DataFrame:
    """Subtract each row's mean (NaNs ignored)."""
    return scores.sub(scores.mean(axis=1), axis=0)


TRANSFORMS: dict[str, Callable[..., pd.DataFrame]] = {
    "rank": cs_rank,
    "zscore": cs_zscore,
    "winsorize": cs_winsorize,
    "demean": cs_demean,
}

TransformStep = str | tuple[str, Mapping[str, Any]]


def apply_transforms(scores: pd.DataFrame, transforms: Sequence[TransformStep]) -> pd.DataFrame:
    """Apply cross-sectional transforms in order, by name or as (name, params): ["winsorize", "zscore"]."""
    if isinstance(transforms, str):
        transforms = [transforms]
    out = scores
    for step in transforms:
        name, params = (step, {}) if isinstance(step, str) else (step[0], dict(step[1]))
        params = check_params("transform", name, params)
        out = TRANSFORMS[name](out, **params)
    return out


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class SignalSpec:
    """A registered signal: the function, the input it reads ("forecasts" or "panel"), a one-line summary."""

    func: Callable[..., pd.DataFrame]
    source: Literal["forecasts", "panel"]
    summary: str


SIGNALS: dict[str, SignalSpec] = {
    "expected_return": SignalSpec(expected_return, "forecasts", "predicted return to a step (mean/median path)"),
    "prob_up": SignalSpec(prob_up, "forecasts", "probability that close at a step exceeds last close"),
    "risk_adjusted_return": SignalSpec(risk_adjusted_return, "forecasts", "expected return / sample dispersion"),
    "quantile_return": SignalSpec(quantile_return, "forecasts", "q-quantile predicted return"),
    "upside_downside": SignalSpec(upside_downside, "forecasts", "upside quantile gain minus downside quantile loss"),
    "path_last": SignalSpec(_path_stat("last"), "forecasts", "last predicted close / last close - 1"),
    "path_mean": SignalSpec(_path_stat("mean"), "forecasts", "mean predicted close / last close - 1"),
    "path_max": SignalSpec(_path_stat("max"), "forecasts", "max predicted close / last close - 1"),
    "path_min": SignalSpec(_path_stat("min"), "forecasts", "min predicted close / last close - 1"),
    "momentum": SignalSpec(momentum, "panel", "past return over lookback bars skipping the last skip bars"),
}


def compute_signal(
    name: str,
    forecasts: Any = None,
    panel: Any = None,
    *,
    transforms: Sequence[TransformStep] = (),
    **params: Any,
) -> pd.DataFrame:
    """Compute the registered signal ``name`` and apply ``transforms``.

    forecasts: the long forecast table (polars or pandas); panel: the long OHLCV panel. Each
    signal reads one of them (``SIGNALS[name].source``). Returns wide scores (dates, instruments).
    Raises ConfigError (a ValueError) for unknown names or bad parameters (see ``kronos_quant.registry``),
    ValueError for a missing input.
    """
    params = check_params("signal", name, params)
    spec = SIGNALS[name]
    source = forecasts if spec.source == "forecasts" else panel
    if source is None:
        raise ValueError(f"signal {name!r} reads the {spec.source} table; pass {spec.source}=...")
    scores = spec.func(source, **params)
    logger.debug("signal %s: %d dates x %d instruments", name, *scores.shape)
    return apply_transforms(scores, transforms)
