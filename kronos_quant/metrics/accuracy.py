"""Point-forecast accuracy: squared / absolute errors, direction, skill against a random walk.

Owns NaN-aware error metrics on arrays of any matching shape. A pair counts only when every
input at that position is finite; a metric with no valid pair is NaN. Knows nothing about
where forecasts come from, DataFrames of dates, files or plots.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kronos_quant.metrics._validation import as_float_array

__all__ = [
    "mean_squared_error",
    "mean_absolute_error",
    "directional_accuracy",
    "forecast_accuracy",
]


def _pair(pred: Any, actual: Any, pred_name: str, actual_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as flat float arrays restricted to the positions where both are finite."""
    p = as_float_array(pred, pred_name)
    a = as_float_array(actual, actual_name)
    if p.shape != a.shape:
        raise ValueError(
            f"`{pred_name}` has shape {p.shape} but `{actual_name}` has shape {a.shape}; they must match"
        )
    valid = np.isfinite(p) & np.isfinite(a)
    return p[valid], a[valid]


def mean_squared_error(pred: Any, actual: Any) -> float:
    """Mean of (pred - actual)^2 over positions where both are finite; NaN when there are none."""
    p, a = _pair(pred, actual, "pred", "actual")
    return float(np.mean((p - a) ** 2)) if p.size else np.nan


def mean_absolute_error(pred: Any, actual: Any) -> float:
    """Mean of |pred - actual| over positions where both are finite; NaN when there are none."""
    p, a = _pair(pred, actual, "pred", "actual")
    return float(np.mean(np.abs(p - a))) if p.size else np.nan


def directional_accuracy(pred_change: Any, actual_change: Any) -> float:
    """Share of positions where sign(pred_change) == sign(actual_change).

    Positions where the actual change is exactly 0 carry no direction and are excluded; a
    predicted change of exactly 0 (no call) against a non-zero actual counts as a miss.
    NaN when no position is left.
    """
    p, a = _pair(pred_change, actual_change, "pred_change", "actual_change")
    moved = a != 0
    if not moved.any():
        return np.nan
    return float(np.mean(np.sign(p[moved]) == np.sign(a[moved])))


def _broadcast_last(last: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Broadcast last prices to ``shape``, also along *leading* axes: (N,) -> (N, H)."""
    if last.ndim < len(shape) and last.shape == shape[: last.ndim]:
        last = last.reshape(last.shape + (1,) * (len(shape) - last.ndim))
    try:
        return np.broadcast_to(last, shape)
    except ValueError as exc:
        raise ValueError(
            f"`last_price` of shape {last.shape} cannot be broadcast to the prediction shape {shape}; "
            "pass one last price per series, e.g. (N,) for predictions of shape (N, H)"
        ) from exc


def _ratio(model: float, baseline: float) -> float:
    return model / baseline if np.isfinite(baseline) and baseline > 0 else np.nan


def forecast_accuracy(pred_price: Any, actual_price: Any, last_price: Any) -> dict[str, float]:
    """Errors of price forecasts and of the implied returns, each beside a random-walk baseline.

    pred_price, actual_price: same shape, e.g. (N,) or (N, H) prices; last_price: the last
    observed price of each series, broadcastable to that shape ((N,) is broadcast along H).
    Returns are simple: pred / last - 1 and actual / last - 1. The random walk predicts the last
    price (zero return). Keys:
      return_mse, return_mae, return_mse_rw, return_mae_rw, return_mse_skill, return_mae_skill,
      price_mse, price_mae, price_mse_rw, price_mae_rw, price_mse_skill, price_mae_skill,
      directional_accuracy, n.
    ``*_skill`` = model error / random-walk error (below 1 beats the random walk; NaN when the
    baseline error is 0). All metrics use the same positions: where pred, actual and last are
    finite and last != 0.
    """
    pred = as_float_array(pred_price, "pred_price")
    actual = as_float_array(actual_price, "actual_price")
    if pred.shape != actual.shape:
        raise ValueError(f"`pred_price` has shape {pred.shape} but `actual_price` has shape {actual.shape}")
    last = _broadcast_last(as_float_array(last_price, "last_price"), pred.shape)
    valid = np.isfinite(pred) & np.isfinite(actual) & np.isfinite(last) & (last != 0)
    p, a, lp = pred[valid], actual[valid], last[valid]
    pred_ret = p / lp - 1.0
    actual_ret = a / lp - 1.0
    zeros = np.zeros_like(actual_ret)
    out: dict[str, float] = {
        "return_mse": mean_squared_error(pred_ret, actual_ret),
        "return_mae": mean_absolute_error(pred_ret, actual_ret),
        "return_mse_rw": mean_squared_error(zeros, actual_ret),
        "return_mae_rw": mean_absolute_error(zeros, actual_ret),
        "price_mse": mean_squared_error(p, a),
        "price_mae": mean_absolute_error(p, a),
        "price_mse_rw": mean_squared_error(lp, a),
        "price_mae_rw": mean_absolute_error(lp, a),
    }
    for kind in ("return", "price"):
        for err in ("mse", "mae"):
            out[f"{kind}_{err}_skill"] = _ratio(out[f"{kind}_{err}"], out[f"{kind}_{err}_rw"])
    out["directional_accuracy"] = directional_accuracy(pred_ret, actual_ret)
    out["n"] = int(valid.sum())
    return out
