"""Shared data contracts: panel columns, forecast-table columns, forecast results.

This module owns names and shapes that several layers agree on. It imports nothing from the
rest of the package but ``errors``, so every module may import it.

Panel (the one standard market-data frame, a polars DataFrame in long format):
    instrument (Utf8), timestamp (Datetime), open, high, low, close, volume, amount (Float64),
    sorted by (instrument, timestamp).

Forecast table (tidy, one row per instrument x as-of x step):
    instrument, asof, step (1..H), target_timestamp, last_close,
    for each field f in FIELDS: f_mean, f_median, quantile_column(f, q) for each level q,
    prob_up (P[close at step > last_close]), and optionally close_samples (list of S floats).
    The summaries are sample statistics of the S paths unless the forecaster gives exact ones
    (``ForecastResult.exact``, e.g. the closed-form log-normal baselines).
Its helpers live here too: ``quantile_columns`` parses the quantile column names back into
levels, ``central_intervals`` pairs them into central intervals, ``sample_matrix`` turns the
sample lists into one array and ``join_realized`` adds the realised value at each target time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl

from kronos_quant.errors import DataError

__all__ = [
    "FIELDS",
    "PRICE_FIELDS",
    "PANEL_COLUMNS",
    "DEFAULT_QUANTILES",
    "quantile_column",
    "quantile_columns",
    "central_intervals",
    "sample_matrix",
    "join_realized",
    "SamplingSpec",
    "ForecastResult",
    "Forecaster",
    "summary_names",
]

FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "amount")
PRICE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close")
PANEL_COLUMNS: tuple[str, ...] = ("instrument", "timestamp", *FIELDS)
DEFAULT_QUANTILES: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
CLOSE_INDEX = FIELDS.index("close")


def quantile_column(field_name: str, q: float) -> str:
    """Column name of quantile ``q`` (in (0, 1)) of ``field_name``: ``close_q5`` for 0.05, ``close_q2.5`` for 0.025."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must lie strictly between 0 and 1, got {q}")
    return f"{field_name}_q{q * 100:g}"


def quantile_columns(columns: Iterable[Any], field_name: str = "close") -> dict[float, str]:
    """Level -> column name for every quantile column of ``field_name`` among ``columns``, by level.

    The inverse of ``quantile_column``: ``close_q5`` -> 0.05, ``close_q2.5`` -> 0.025 (levels
    rounded to 10 decimals). Other columns are ignored.
    """
    pattern = re.compile(rf"{re.escape(field_name)}_q([0-9]+(?:\.[0-9]*)?)")
    found: dict[float, str] = {}
    for col in columns:
        match = pattern.fullmatch(str(col))
        if match and 0.0 < float(match.group(1)) < 100.0:
            found[round(float(match.group(1)) / 100.0, 10)] = str(col)
    return dict(sorted(found.items()))


def central_intervals(levels: Iterable[float]) -> dict[float, tuple[float, float]]:
    """Coverage -> (lower, upper) level for every symmetric pair among ``levels``, narrowest first.

    e.g. (0.05, 0.25, 0.5, 0.75, 0.95) -> {0.5: (0.25, 0.75), 0.9: (0.05, 0.95)}. The bounds are
    the given levels themselves, so ``quantile_column(field, bound)`` names their columns.
    """
    given = {round(float(q), 9): float(q) for q in levels}
    pairs = {round(1.0 - 2.0 * lo, 9): (q, given[round(1.0 - lo, 9)])
             for lo, q in given.items() if lo < 0.5 and round(1.0 - lo, 9) in given}
    return dict(sorted(pairs.items()))


def sample_matrix(values: Iterable[Any]) -> np.ndarray:
    """(N, S_max) float64 matrix from a column of per-row sample lists (``close_samples``).

    Shorter rows are padded with NaN; a missing row (None or NaN) is all NaN.
    """
    rows = [np.asarray([] if v is None or (np.isscalar(v) and v != v) else v, dtype=np.float64).ravel()
            for v in values]
    out = np.full((len(rows), max((r.size for r in rows), default=0)), np.nan)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out


def join_realized(forecasts: Any, panel: pl.DataFrame, *, field_name: str = "close") -> pl.DataFrame:
    """The forecast table (polars) with ``actual_<field>``: the panel's value at each row's target time.

    forecasts: the forecast table (polars or pandas); panel: the standard panel. Rows keep their
    order; the new column is null where the panel has no bar at the target timestamp (not yet
    known, or missing). When only one side is time-zone aware, the panel's timestamps are read
    as wall-clock time in the forecasts' zone.
    """
    fc = forecasts if isinstance(forecasts, pl.DataFrame) else pl.from_pandas(forecasts)
    missing = [c for c in ("instrument", "target_timestamp") if c not in fc.columns]
    if missing:
        raise DataError(f"the forecast table lacks {missing}; build it with the rolling engine (kronos_quant.engine)")
    target, stamp = fc.schema["target_timestamp"], panel.schema["timestamp"]
    if not isinstance(target, pl.Datetime) or not isinstance(stamp, pl.Datetime):
        raise DataError(f"target_timestamp ({target}) and the panel's timestamp ({stamp}) must both be datetimes")
    ts = pl.col("timestamp")
    if stamp.time_zone != target.time_zone:
        ts = (ts.dt.convert_time_zone(target.time_zone) if stamp.time_zone and target.time_zone
              else ts.dt.replace_time_zone(target.time_zone))
    actual = panel.select(pl.col("instrument"), ts.dt.cast_time_unit(target.time_unit).alias("target_timestamp"),
                          pl.col(field_name).alias(f"actual_{field_name}"))
    return fc.join(actual, on=["instrument", "target_timestamp"], how="left", maintain_order="left")


@dataclass(frozen=True)
class SamplingSpec:
    """How sample paths are drawn.

    samples: number of paths S per series. temperature: logits are divided by it.
    top_k: keep the k best tokens (0 = off; 1 = greedy). top_p: nucleus mass (1.0 = off;
    ignored when top_k > 0). seed: base seed; the same seed gives the same paths.
    """

    samples: int = 1
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.9
    seed: int = 0

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p}")


def summary_names(quantile_levels: Sequence[float] = DEFAULT_QUANTILES) -> list[str]:
    """The forecast-table columns a forecaster may give exactly (``ForecastResult.exact``): f_mean,
    f_median and the quantile columns of every field f, and prob_up."""
    names = [n for f in FIELDS for n in (f"{f}_mean", f"{f}_median", *(quantile_column(f, q) for q in quantile_levels))]
    return [*names, "prob_up"]


@dataclass
class ForecastResult:
    """Sample paths for B series and their summaries.

    paths: (B, S, H, 6) float64, in price units, fields in FIELDS order.
    last_close: (B,) the last observed close of each series.
    quantile_levels: the levels reported by ``quantiles``.
    exact: optional exact summaries, by forecast-table column name (``summary_names``: "close_mean",
    "close_median", "close_q5", "prob_up", ...), each (B, H) float64. A forecaster whose predictive
    distribution has a closed form (the log-normal baselines) gives them so that point forecasts and
    signals carry no sampling noise; ``mean``, ``median``, ``quantiles`` and ``prob_up`` (and so the
    forecast table) use them instead of the sample statistics. The paths still serve the scores that
    need an ensemble (CRPS, coverage, rank histogram).
    """

    paths: np.ndarray
    last_close: np.ndarray
    quantile_levels: tuple[float, ...] = DEFAULT_QUANTILES
    info: dict[str, Any] = field(default_factory=dict)
    exact: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.exact:
            return
        known = set(summary_names(self.quantile_levels))
        shape = (self.paths.shape[0], self.paths.shape[2])
        for name, values in self.exact.items():
            if name not in known:
                raise ValueError(f"exact summary {name!r} is not a forecast-table summary column; "
                                 f"use one of {sorted(known)}")
            if np.shape(values) != shape:
                raise ValueError(f"exact summary {name!r} has shape {np.shape(values)}; expected (B, H) = {shape}")

    def _with_exact(self, stat: np.ndarray, suffix: str) -> np.ndarray:
        """(B, H, 6) ``stat`` with each field's exact value (``{field}_{suffix}``) where given."""
        for j, f in enumerate(FIELDS):
            exact = self.exact.get(f"{f}_{suffix}")
            if exact is not None:
                stat[..., j] = exact
        return stat

    @property
    def n_series(self) -> int:
        return int(self.paths.shape[0])

    @property
    def horizon(self) -> int:
        return int(self.paths.shape[2])

    @property
    def mean(self) -> np.ndarray:
        """(B, H, 6) mean over sample paths (the exact mean of the fields given in ``exact``)."""
        return self._with_exact(self.paths.mean(axis=1), "mean")

    @property
    def median(self) -> np.ndarray:
        """(B, H, 6) median over sample paths (the exact median of the fields given in ``exact``)."""
        return self._with_exact(np.median(self.paths, axis=1), "median")

    @property
    def quantiles(self) -> np.ndarray:
        """(B, Q, H, 6) quantiles over sample paths at ``quantile_levels`` (linear interpolation), or
        the exact ones given in ``exact``."""
        q = np.quantile(self.paths, np.asarray(self.quantile_levels, dtype=np.float64), axis=1)  # (Q, B, H, 6)
        out = np.moveaxis(q, 0, 1)
        for k, level in enumerate(self.quantile_levels):
            for j, f in enumerate(FIELDS):
                exact = self.exact.get(quantile_column(f, level))
                if exact is not None:
                    out[:, k, :, j] = exact
        return out

    @property
    def prob_up(self) -> np.ndarray:
        """(B, H) P[close at each step > the last observed close]: ``exact["prob_up"]`` when given, else
        the fraction of paths above it."""
        if "prob_up" in self.exact:
            return np.asarray(self.exact["prob_up"], dtype=np.float64)
        close = self.paths[..., CLOSE_INDEX]  # (B, S, H)
        return (close > self.last_close[:, None, None]).mean(axis=1)


@runtime_checkable
class Forecaster(Protocol):
    """Anything that turns B price histories into sample paths (Kronos or a baseline).

    ``identity`` is a JSON-serialisable dict naming the model (id, revision, settings); the
    forecast cache keys on it together with the sampling spec and the exact input window.
    """

    @property
    def identity(self) -> dict[str, Any]: ...

    def forecast_arrays(
        self,
        series: Sequence[np.ndarray],
        past_stamps: Sequence[np.ndarray],
        future_stamps: Sequence[np.ndarray],
        *,
        horizon: int,
        sampling: SamplingSpec,
        seeds: Sequence[int] | None = None,
        quantile_levels: Sequence[float] = DEFAULT_QUANTILES,
    ) -> ForecastResult:
        """series[i]: (T_i, 6) float prices/volumes in FIELDS order; past_stamps[i]: (T_i, 5) int
        time features; future_stamps[i]: (horizon, 5). seeds: one per series (paths of a series
        must depend only on its own seed and inputs, never on batch composition)."""
        ...
