"""Baseline forecasters: random walk, historical drift and a per-window linear model.

They satisfy ``schema.Forecaster`` and return sample paths (B, S, H, 6) in price units, so every
layer downstream (engine, signals, backtest) can be exercised and benchmarked without a neural
model. Each series is fitted on its own window only and sampled from its own
``numpy.random.Generator(seed)``, so its paths never depend on the batch it was sent in.

Knows nothing about DataFrames, dates, tokenization or torch.

Path construction (shared by all three): the close follows
``log C_h = log C_0 + sum_{j<=h} (mu_j + sigma_j * z_j)`` with ``z ~ N(0, 1)``; the open of step h
is the close of step h-1; high/low add the window's mean upper/lower wick (in log units) to
max/min(open, close); volume and amount are held at the window's mean (or last) value.
``sampling.temperature`` scales the noise; ``sampling.top_k == 1`` (greedy) gives the noise-free
point path. The random walk's drift is -s^2/2 per step (s: the noise std as sampled), which makes
the price a martingale.

The close is log-normal at every step, so each forecast also carries its exact mean, median,
quantiles and prob_up (``ForecastResult.exact``; the open of step h is the close of step h-1): point
forecasts and signals have no sampling noise and do not depend on the seed. The S paths remain for
the scores that need an ensemble (CRPS, coverage, rank histogram).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from scipy import stats
from sklearn.linear_model import Ridge

from kronos_quant.schema import (
    CLOSE_INDEX,
    DEFAULT_QUANTILES,
    FIELDS,
    ForecastResult,
    SamplingSpec,
    quantile_column,
)

__all__ = ["RandomWalkForecaster", "HistoricalDriftForecaster", "LinearForecaster"]

logger = logging.getLogger(__name__)

_OPEN, _HIGH, _LOW, _CLOSE, _VOLUME, _AMOUNT = (FIELDS.index(f) for f in FIELDS)
assert _CLOSE == CLOSE_INDEX


def _log_returns(close: np.ndarray) -> np.ndarray:
    """(T-1,) log close-to-close returns; NaN where either close is non-positive or missing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lc = np.where(close > 0, np.log(np.where(close > 0, close, 1.0)), np.nan)
    return np.diff(lc)


def _finite_mean(x: np.ndarray, default: float = 0.0) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else default


def _finite_std(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.std(ddof=1)) if x.size >= 2 else 0.0


def _wicks(window: np.ndarray) -> tuple[float, float]:
    """Mean upper wick log(high / max(open, close)) and lower wick log(min(open, close) / low), >= 0."""
    o, h, lo, c = (window[:, i] for i in (_OPEN, _HIGH, _LOW, _CLOSE))
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.log(h / np.maximum(o, c))
        down = np.log(np.minimum(o, c) / lo)
    return max(_finite_mean(up), 0.0), max(_finite_mean(down), 0.0)


def _check_inputs(series: Sequence[np.ndarray], seeds: Sequence[int] | None, horizon: int) -> list[int]:
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    for i, s in enumerate(series):
        if s.ndim != 2 or s.shape[1] != len(FIELDS) or s.shape[0] < 1:
            raise ValueError(f"series[{i}] must have shape (T >= 1, {len(FIELDS)}), got {s.shape}")
    if seeds is None:
        return list(range(len(series)))
    if len(seeds) != len(series):
        raise ValueError(f"got {len(seeds)} seeds for {len(series)} series; pass one seed per series")
    return [int(s) for s in seeds]


class _PathForecaster:
    """Common machinery: subclasses supply per-step log-return mean and std for one window."""

    name = "base"
    version = 2  # 2: exact summaries, martingale random walk
    martingale = False  # True: the log drift is -s^2/2 per step, so E[close_h] = last close (no change)

    def __init__(self, *, volume_mode: Literal["mean", "last"] = "mean") -> None:
        if volume_mode not in ("mean", "last"):
            raise ValueError(f"volume_mode must be 'mean' or 'last', got {volume_mode!r}")
        self.volume_mode = volume_mode

    def _settings(self) -> dict[str, Any]:
        return {"volume_mode": self.volume_mode}

    @property
    def identity(self) -> dict[str, Any]:
        return {"forecaster": self.name, "version": self.version, **self._settings()}

    def _step_moments(self, window: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """(H,) mean and (H,) std of each step's log return, and whether a fallback was used."""
        raise NotImplementedError

    def _log_moments(self, window: np.ndarray, horizon: int, sampling: SamplingSpec
                     ) -> tuple[np.ndarray, np.ndarray, bool]:
        """(H,) log drift and (H,) noise std of each step as sampled (temperature applied, 0 when greedy)."""
        mu, sigma, fallback = self._step_moments(window, horizon)
        scale = 0.0 if sampling.top_k == 1 else sampling.temperature
        noise = scale * np.asarray(sigma, dtype=np.float64)
        drift = -0.5 * noise**2 if self.martingale else np.asarray(mu, dtype=np.float64)
        return drift, noise, fallback

    def _paths_one(self, window: np.ndarray, drift: np.ndarray, noise: np.ndarray, samples: int, seed: int
                   ) -> np.ndarray:
        """(S, H, 6) paths for one (T, 6) window whose log close steps have (H,) ``drift`` and ``noise`` std."""
        horizon = drift.size
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((samples, horizon))
        last = window[-1]
        last_close = last[_CLOSE]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_close = np.log(last_close) + np.cumsum(drift + noise * z, axis=1)
        close = np.exp(log_close)  # (S, H)
        open_ = np.concatenate([np.full((samples, 1), last_close), close[:, :-1]], axis=1)
        up, down = _wicks(window)
        paths = np.empty((samples, horizon, len(FIELDS)), dtype=np.float64)
        paths[..., _OPEN] = open_
        paths[..., _CLOSE] = close
        paths[..., _HIGH] = np.maximum(open_, close) * np.exp(up)
        paths[..., _LOW] = np.minimum(open_, close) * np.exp(-down)
        for idx in (_VOLUME, _AMOUNT):
            col = window[:, idx]
            paths[..., idx] = _finite_mean(col, np.nan) if self.volume_mode == "mean" else last[idx]
        return paths

    def _exact(self, last_close: np.ndarray, drift: np.ndarray, noise: np.ndarray, levels: Sequence[float]
               ) -> dict[str, np.ndarray]:
        """(B, H) exact summaries of the log-normal close (and of the open, the previous close).

        last_close: (B,); drift, noise: (B, H). log C_h ~ N(log C_0 + m_h, v_h), m_h = sum_{j<=h} drift_j,
        v_h = sum_{j<=h} noise_j^2: mean C_0 exp(m_h + v_h / 2) (C_0 itself for the martingale random
        walk, exactly), median C_0 exp(m_h), quantile q C_0 exp(m_h + sqrt(v_h) z_q), prob_up
        P[C_h > C_0] = Phi(m_h / sqrt(v_h)) (with v_h = 0: 1 if m_h > 0 else 0, as the share of
        identical paths above C_0 would be). NaN for a non-positive or missing last close.
        """
        c0 = np.where(np.isfinite(last_close) & (last_close > 0), last_close, np.nan)[:, None]  # (B, 1)
        m = np.cumsum(drift, axis=1)
        sd = np.sqrt(np.cumsum(noise**2, axis=1))
        growth = np.zeros_like(m) if self.martingale else np.cumsum(drift + 0.5 * noise**2, axis=1)  # log E[C_h/C_0]
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(sd > 0, stats.norm.cdf(m / np.where(sd > 0, sd, 1.0)), (m > 0).astype(np.float64))
        close = {"close_mean": c0 * np.exp(growth), "close_median": c0 * np.exp(m)}
        for q, z in zip(levels, stats.norm.ppf(np.asarray(levels, dtype=np.float64))):
            close[quantile_column("close", q)] = c0 * np.exp(m + sd * z)
        out = {**close, "prob_up": np.where(np.isnan(c0), np.nan, up)}
        for name, values in close.items():
            out["open_" + name[len("close_"):]] = np.concatenate([c0, values[:, :-1]], axis=1)
        return out

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
        """Paths (B, S, H, 6) for B windows ``series[i]`` of shape (T_i, 6) in FIELDS order, with the
        exact close/open mean, median and quantiles and prob_up (``ForecastResult.exact``, (B, H) each).

        Time features are accepted for protocol compatibility and ignored. Without ``seeds`` the
        i-th series uses seed i (then paths do depend on batch position; the engine always passes seeds).
        The exact summaries depend on the window alone, never on the seed.
        """
        seed_list = _check_inputs(series, seeds, horizon)
        windows = [np.asarray(s, dtype=np.float64) for s in series]
        levels = tuple(float(q) for q in quantile_levels)
        out = np.empty((len(windows), sampling.samples, horizon, len(FIELDS)), dtype=np.float64)
        drift, noise = np.empty((len(windows), horizon)), np.empty((len(windows), horizon))
        n_fallback = 0
        for i, (w, seed) in enumerate(zip(windows, seed_list)):
            drift[i], noise[i], fallback = self._log_moments(w, horizon, sampling)
            out[i] = self._paths_one(w, drift[i], noise[i], sampling.samples, seed)
            n_fallback += int(fallback)
        last_close = np.array([w[-1, _CLOSE] for w in windows], dtype=np.float64)
        return ForecastResult(
            paths=out,
            last_close=last_close,
            quantile_levels=levels,
            info={"forecaster": self.name, "n_fallback": n_fallback},
            exact=self._exact(last_close, drift, noise, levels),
        )


class RandomWalkForecaster(_PathForecaster):
    """Random walk in price with the window's empirical log-return volatility: a price martingale.

    Convention: the *mean* is the no-change forecast, E[close_h] = last close exactly (log drift
    -sigma^2/2 per step), so its expected-return signal is 0 for every name and its return MSE is
    that of the no-change forecast; the median, last close * exp(-h sigma^2 / 2), lies slightly
    below, and prob_up = Phi(-sigma sqrt(h) / 2) < 0.5. Volume/amount are held at the window mean.
    """

    name = "random_walk"
    martingale = True

    def _step_moments(self, window: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, bool]:
        sigma = _finite_std(_log_returns(window[:, _CLOSE]))
        return np.zeros(horizon), np.full(horizon, sigma), False


class HistoricalDriftForecaster(_PathForecaster):
    """Random walk whose log drift is the window's mean log return (per bar): the median extrapolates
    the window's log growth, the mean adds sigma^2 / 2 per bar (E[close_h] = last close *
    exp(h (mean log return + sigma^2 / 2)), the window's mean gross return compounded)."""

    name = "historical_drift"

    def _step_moments(self, window: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, bool]:
        r = _log_returns(window[:, _CLOSE])
        return np.full(horizon, _finite_mean(r)), np.full(horizon, _finite_std(r)), False


class LinearForecaster(_PathForecaster):
    """Ridge regression of each future step's log return on lagged returns and log ranges.

    For every window separately (never pooled across as-of dates): features at bar t are the
    last ``n_lags`` log close returns and log(high / low) ranges up to t (standardised within
    the window); targets are the returns at t+1..t+H. One multi-output Ridge is fitted on the
    rows whose targets lie inside the window, then applied to the features at the last bar.
    Paths add Gaussian noise with each step's in-sample residual std. Windows with fewer than
    ``min_train_rows`` training rows fall back to the historical-drift model.
    """

    name = "linear"

    def __init__(
        self,
        *,
        n_lags: int = 5,
        alpha: float = 1.0,
        min_train_rows: int = 20,
        volume_mode: Literal["mean", "last"] = "mean",
    ) -> None:
        super().__init__(volume_mode=volume_mode)
        if n_lags < 1:
            raise ValueError(f"n_lags must be >= 1, got {n_lags}")
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if min_train_rows < 2:
            raise ValueError(f"min_train_rows must be >= 2, got {min_train_rows}")
        self.n_lags = n_lags
        self.alpha = alpha
        self.min_train_rows = min_train_rows

    def _settings(self) -> dict[str, Any]:
        return {
            **super()._settings(),
            "n_lags": self.n_lags,
            "alpha": self.alpha,
            "min_train_rows": self.min_train_rows,
        }

    def _features(self, window: np.ndarray) -> np.ndarray:
        """(T, 2 * n_lags) features per bar t (rows t < n_lags are incomplete and not used)."""
        returns = np.concatenate([[np.nan], _log_returns(window[:, _CLOSE])])  # (T,) r[t] = log c_t/c_{t-1}
        with np.errstate(divide="ignore", invalid="ignore"):
            ranges = np.log(window[:, _HIGH] / window[:, _LOW])
        n_bars = window.shape[0]
        feats = np.full((n_bars, 2 * self.n_lags), np.nan)
        for lag in range(min(self.n_lags, n_bars)):
            feats[lag:, lag] = returns[: n_bars - lag]
            feats[lag:, self.n_lags + lag] = ranges[: n_bars - lag]
        return feats

    def _step_moments(self, window: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, bool]:
        n_bars = window.shape[0]
        feats = self._features(window)
        returns = np.concatenate([[np.nan], _log_returns(window[:, _CLOSE])])
        rows = np.arange(self.n_lags, n_bars - horizon)  # t with t-n_lags+1 >= 1 and t+H <= T-1
        x_now = feats[-1]
        if rows.size:
            targets = np.stack([returns[rows + h] for h in range(1, horizon + 1)], axis=1)  # (N, H)
            x = feats[rows]
            ok = np.isfinite(x).all(axis=1) & np.isfinite(targets).all(axis=1)
            x, targets = x[ok], targets[ok]
        else:
            x, targets = np.empty((0, feats.shape[1])), np.empty((0, horizon))
        if x.shape[0] < self.min_train_rows or not np.isfinite(x_now).all():
            r = returns[1:]
            return np.full(horizon, _finite_mean(r)), np.full(horizon, _finite_std(r)), True
        center = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0
        model = Ridge(alpha=self.alpha, solver="cholesky")
        model.fit((x - center) / scale, targets)
        mu = model.predict(((x_now - center) / scale)[None, :]).reshape(horizon)
        resid = targets - model.predict((x - center) / scale).reshape(-1, horizon)
        sigma = resid.std(axis=0, ddof=1)
        return mu, sigma, False
