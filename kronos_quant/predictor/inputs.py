"""Input checks and per-series normalisation, exactly as the reference predictor does it.

Arrays only: each series is (T, 6) in FIELDS order (open, high, low, close, volume, amount).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["NormStats", "check_inputs", "normalize", "denormalize", "EPS"]

EPS = 1e-5


@dataclass(frozen=True)
class NormStats:
    """Per-series column mean and population std, float32 (B, 6) each."""

    mean: np.ndarray
    std: np.ndarray


def _label(i: int, names: Sequence[str] | None) -> str:
    return f"series {i}" + (f" ({names[i]!r})" if names is not None and i < len(names) else "")


def check_inputs(series: Sequence[np.ndarray], past_stamps: Sequence[np.ndarray], future_stamps: Sequence[np.ndarray],
                 horizon: int, *, names: Sequence[str] | None = None) -> list[np.ndarray]:
    """Validate B series and their time features; return float32 (T_i, 6) arrays.

    Raises ValueError naming the series (index and name) for: an empty series, NaN/inf values,
    a wrong number of columns, a horizon below 1, mismatched lengths between data and past
    stamps, and a number of future stamps different from the horizon.
    """
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon (pred_len) must be an integer >= 1, got {horizon!r}")
    if len(series) == 0:
        raise ValueError("no series given: pass at least one (T, 6) array")
    if not (len(series) == len(past_stamps) == len(future_stamps)):
        raise ValueError(f"got {len(series)} series but {len(past_stamps)} past-stamp arrays and "
                         f"{len(future_stamps)} future-stamp arrays; pass one of each per series")
    out = []
    for i, (x, ps, fs) in enumerate(zip(series, past_stamps, future_stamps)):
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != 6:
            raise ValueError(f"{_label(i, names)}: expected shape (T, 6) for open, high, low, close, volume, "
                             f"amount, got {x.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"{_label(i, names)}: empty series; give at least one bar of history")
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            bad_rows = np.where(~np.isfinite(x).all(axis=1))[0]
            raise ValueError(f"{_label(i, names)}: NaN or inf in prices/volumes at rows {bad_rows[:5].tolist()}"
                             f"{' ...' if len(bad_rows) > 5 else ''}; fill or drop them first")
        if len(ps) != x.shape[0]:
            raise ValueError(f"{_label(i, names)}: {x.shape[0]} bars but {len(ps)} timestamps; lengths must match")
        if len(fs) != horizon:
            raise ValueError(f"{_label(i, names)}: {len(fs)} future timestamps but horizon is {horizon}; "
                             "give exactly one timestamp per predicted bar")
        out.append(x)
    return out


def normalize(x: np.ndarray, clip: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, 6) float32 -> clipped z-scores, mean (6,), std (6,) -- float32 as the reference computes them."""
    x = x.astype(np.float32)
    mean = np.mean(x, axis=0)
    std = np.std(x, axis=0)
    z = np.clip((x - mean) / (std + EPS), -clip, clip)
    return z.astype(np.float32), mean, std


def denormalize(z: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Undo ``normalize``: z (..., 6) * (std + eps) + mean."""
    return z * (std + EPS) + mean
