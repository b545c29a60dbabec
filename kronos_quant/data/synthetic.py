"""Synthetic OHLCV markets with known properties, for tests, demos and sanity checks of strategies.

This module owns the generator. Every mode shares the same machinery: a common market factor and
per-instrument idiosyncratic shocks, each with GJR-GARCH(1,1) volatility (clustering plus a
leverage effect) and unit-variance Student-t(5) innovations (fat tails), split into an overnight
gap (20% of the variance: open vs previous close) and an intraday move (open -> close). High and
low are the extremes of a Brownian bridge from open to close, so low <= open, close <= high
always. Volume rises with |shock| and with volatility (plus persistent noise); amount is volume x
(open + high + low + close) / 4. Per-bar volatility is scaled from daily by sqrt(252 / periods
per year), so intraday calendars give intraday-sized moves.

Modes (all log-returns are close-to-close, ``r_t = log(C_t / C_{t-1})``):

* ``"martingale"``: ``E[r_{t+1} | everything observed up to t] = 0`` exactly (no drift; shocks are
  symmetric and independent of the past). Volatility is predictable, the sign is not.
* ``"realistic"``: the martingale plus a small positive drift (about 7.5% a year).
* ``"planted"``: the martingale plus a known predictable component added to the intraday move:
  ``E[r_{t+1} | past] = m_t = strength * (W1 * r1_t + W5 * r5_t + WR * dr_t)`` where
  ``r1_t = log(C_t / C_{t-1})``, ``r5_t = log(C_t / C_{t-5})`` and ``dr_t = range_t - range_{t-1}``
  with ``range_t = log(H_t / L_t)`` (``PLANTED_WEIGHTS``: a 1-bar reversal, a 5-bar momentum and a
  premium for a widening range; every term has mean ~0, so no drift is planted). ``m_t`` is 0
  for the first 5 bars. ``planted_signal(panel, strength=...)`` recomputes ``m_t`` from the panel
  alone, so a linear model of the next return on r1, r5 and dr recovers it exactly
  (coefficients ``strength * W``). The weights are scaled so that ``strength`` is roughly the
  information coefficient (correlation of ``m_t`` with ``r_{t+1}``) for small strengths;
  ``strength`` must lie in [0, 0.5] (beyond that the feedback can explode).

Deterministic: the same arguments and seed give the same panel. Knows nothing about models.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
import polars as pl

from kronos_quant.data.calendar import BarCalendar, infer_frequency, periods_per_year
from kronos_quant.data.panel import PANEL_SCHEMA, check_panel
from kronos_quant.schema import PANEL_COLUMNS

__all__ = ["PLANTED_WEIGHTS", "synthetic_market", "planted_signal", "describe_synthetic"]

Mode = Literal["realistic", "martingale", "planted"]
MODES: tuple[str, ...] = ("realistic", "martingale", "planted")
PLANTED_WEIGHTS: dict[str, float] = {"ret_1": -1.2, "ret_5": 0.37, "range_change": 0.26}
_WARMUP = 5
_OVERNIGHT_SHARE = 0.2
_T_DOF = 5.0


def _timestamps(start: str | pd.Timestamp, n_bars: int, freq: str | BarCalendar) -> pd.DatetimeIndex:
    if isinstance(freq, BarCalendar):
        return freq.next_timestamps(pd.Timestamp(start) - pd.Timedelta(microseconds=1), n_bars)
    if freq == "B":
        return pd.bdate_range(start, periods=n_bars).as_unit("us")
    return pd.date_range(start, periods=n_bars, freq=freq).as_unit("us")


def _student_t(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_t(_T_DOF, size=shape) * math.sqrt((_T_DOF - 2.0) / _T_DOF)


def synthetic_market(
    n_instruments: int = 20,
    n_bars: int = 500,
    *,
    mode: Mode = "realistic",
    strength: float | None = None,
    start: str | pd.Timestamp = "2015-01-02",
    freq: str | BarCalendar = "B",
    seed: int = 0,
) -> pl.DataFrame:
    """A standard panel of ``n_instruments`` x ``n_bars`` synthetic OHLCV bars (see module docstring).

    mode: "realistic" | "martingale" | "planted". strength: planted predictability in [0, 0.5]
    (default 0.1; only for mode "planted"). freq: "B" (business days), any pandas frequency
    alias, or a BarCalendar (e.g. intraday sessions). Instruments are named SYN000, SYN001, ...
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if n_instruments < 1 or n_bars < 2:
        raise ValueError(f"need n_instruments >= 1 and n_bars >= 2, got {n_instruments}, {n_bars}")
    if mode != "planted" and strength not in (None, 0, 0.0):
        raise ValueError(f"strength applies to mode='planted' only (got mode={mode!r}, strength={strength})")
    s = (0.1 if strength is None else float(strength)) if mode == "planted" else 0.0
    if not 0.0 <= s <= 0.5:
        raise ValueError(f"strength must lie in [0, 0.5], got {strength}")
    stamps = _timestamps(start, n_bars, freq)
    scale = math.sqrt(252.0 / periods_per_year(infer_frequency(stamps))) if n_bars >= 2 else 1.0

    rng = np.random.default_rng(seed)
    n, T = n_instruments, n_bars
    beta = rng.uniform(0.6, 1.4, n)
    idio_vol = rng.uniform(0.008, 0.02, n) * scale
    market_vol = 0.01 * scale
    price0 = np.exp(rng.uniform(math.log(10.0), math.log(200.0), n))
    volume0 = np.exp(rng.uniform(math.log(1e5), math.log(1e7), n))
    z_mkt = _student_t(rng, (T, 2))            # (T, [overnight, intraday])
    z_idio = _student_t(rng, (T, 2, n))        # (T, 2, n)
    u_high, u_low = rng.uniform(1e-12, 1.0, (2, T, n))
    vol_noise = rng.standard_normal((T, n))
    drift = 0.0003 * scale**2 if mode == "realistic" else 0.0

    alpha, gamma, garch_beta = 0.05, 0.08, 0.90
    persistence = alpha + gamma / 2 + garch_beta
    h_mkt = market_vol**2
    h_idio = idio_vol**2
    log_close = np.empty((T, n))
    out = {k: np.empty((T, n)) for k in ("open", "high", "low", "close", "volume")}
    prev_close = np.log(price0)
    u = np.zeros(n)
    w1, w5, wr = PLANTED_WEIGHTS["ret_1"], PLANTED_WEIGHTS["ret_5"], PLANTED_WEIGHTS["range_change"]
    prev_range = np.zeros(n)
    planted = np.zeros(n)  # m_{t-1}: expected return of bar t planted at the end of bar t-1
    phi = _OVERNIGHT_SHARE
    for t in range(T):
        e_mkt = math.sqrt(h_mkt) * (math.sqrt(phi) * z_mkt[t, 0] + math.sqrt(1 - phi) * z_mkt[t, 1])
        e_idio = np.sqrt(h_idio) * (math.sqrt(phi) * z_idio[t, 0] + math.sqrt(1 - phi) * z_idio[t, 1])
        h_total = beta**2 * h_mkt + h_idio
        gap = beta * math.sqrt(phi * h_mkt) * z_mkt[t, 0] + np.sqrt(phi * h_idio) * z_idio[t, 0]
        move = beta * math.sqrt((1 - phi) * h_mkt) * z_mkt[t, 1] + np.sqrt((1 - phi) * h_idio) * z_idio[t, 1]
        move = move + drift + planted
        log_open = prev_close + gap
        var_day = (1 - phi) * h_total  # Brownian bridge open -> close: extremes beyond the endpoints
        up = 0.5 * (move + np.sqrt(move**2 - 2.0 * var_day * np.log(u_high[t])))
        down = 0.5 * (move - np.sqrt(move**2 - 2.0 * var_day * np.log(u_low[t])))
        log_close[t] = log_open + move
        out["open"][t], out["close"][t] = np.exp(log_open), np.exp(log_close[t])
        out["high"][t], out["low"][t] = np.exp(log_open + up), np.exp(log_open + down)
        shock = np.abs(beta * e_mkt + e_idio) / np.sqrt(h_total)
        u = 0.7 * u + 0.3 * vol_noise[t]
        out["volume"][t] = volume0 * np.exp(0.6 * (shock - 0.8) + 0.5 * np.log(h_total / (beta**2 * market_vol**2
                                                                                     + idio_vol**2)) + u)
        if s > 0 and t + 1 >= _WARMUP + 1:
            r1 = log_close[t] - log_close[t - 1]
            r5 = log_close[t] - log_close[t - _WARMUP]
            planted = s * (w1 * r1 + w5 * r5 + wr * ((up - down) - prev_range))
        prev_range = up - down
        h_mkt = market_vol**2 * (1 - persistence) + (alpha + gamma * (e_mkt < 0)) * e_mkt**2 + garch_beta * h_mkt
        h_idio = idio_vol**2 * (1 - persistence) + (alpha + gamma * (e_idio < 0)) * e_idio**2 + garch_beta * h_idio
        prev_close = log_close[t]

    width = max(3, len(str(n - 1)))
    names = [f"SYN{i:0{width}d}" for i in range(n)]
    frame = {
        "instrument": np.repeat(names, T),
        "timestamp": np.tile(stamps.tz_localize(None).values.astype("datetime64[us]"), n),
        **{k: v.T.ravel() for k, v in out.items()},
    }
    typical = (frame["open"] + frame["high"] + frame["low"] + frame["close"]) / 4.0
    frame["amount"] = frame["volume"] * typical
    panel = pl.DataFrame({c: frame[c] for c in PANEL_COLUMNS}).cast(PANEL_SCHEMA)  # type: ignore[arg-type]
    if stamps.tz is not None:
        panel = panel.with_columns(pl.col("timestamp").dt.replace_time_zone(str(stamps.tz)))
    return panel


def planted_signal(panel: pl.DataFrame, *, strength: float) -> pl.DataFrame:
    """The planted expected next-bar log-return ``m_t`` of a ``mode="planted"`` panel.

    Returns columns instrument, timestamp, signal (``m_t``, null for each instrument's first 5
    bars), next_return (``r_{t+1}``, null for the last bar), and the features ret_1, ret_5,
    range_change.
    Computed from the panel alone (the formula is in the module docstring).
    """
    check_panel(panel)
    w1, w5, wr = PLANTED_WEIGHTS["ret_1"], PLANTED_WEIGHTS["ret_5"], PLANTED_WEIGHTS["range_change"]
    log_c = pl.col("close").log()
    log_range = (pl.col("high") / pl.col("low")).log()
    feats = panel.select(
        "instrument", "timestamp",
        (log_c - log_c.shift(1)).over("instrument").alias("ret_1"),
        (log_c - log_c.shift(_WARMUP)).over("instrument").alias("ret_5"),
        (log_range - log_range.shift(1)).over("instrument").alias("range_change"),
        (log_c.shift(-1) - log_c).over("instrument").alias("next_return"),
    )
    signal = strength * (w1 * pl.col("ret_1") + w5 * pl.col("ret_5") + wr * pl.col("range_change"))
    signal = pl.when(pl.col("ret_5").is_null()).then(None).otherwise(signal)
    return feats.select("instrument", "timestamp", signal.alias("signal"), "next_return", "ret_1", "ret_5",
                        "range_change")


def describe_synthetic(mode: Mode, *, strength: float | None = None) -> dict[str, Any]:
    """What a synthetic panel of ``mode`` contains (for provenance in reports)."""
    out: dict[str, Any] = {"generator": "kronos_quant.data.synthetic", "mode": mode}
    if mode == "planted":
        out["strength"] = 0.1 if strength is None else strength
        out["planted_weights"] = dict(PLANTED_WEIGHTS)
    return out
