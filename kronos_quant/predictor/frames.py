"""``KronosPredictor``: the original project's DataFrame API on top of ``BatchPredictor``.

``predict`` and ``predict_batch`` keep the original signatures and return the mean of the
sample paths as DataFrames indexed by the future timestamps; ``forecast`` returns the whole
distribution. This is the only predictor module that touches pandas.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from kronos_quant.data.timefeatures import time_features
from kronos_quant.model.spec import ModelSpec
from kronos_quant.predictor.core import BatchPredictor
from kronos_quant.schema import DEFAULT_QUANTILES, FIELDS, PRICE_FIELDS, ForecastResult, SamplingSpec

__all__ = ["KronosPredictor", "frame_to_array"]


def frame_to_array(df: pd.DataFrame, *, label: str = "df") -> np.ndarray:
    """(T, 6) float array from a frame with open, high, low, close and optional volume, amount.

    Missing volume: volume and amount are 0. Missing amount only: volume x mean(OHLC).
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{label}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in PRICE_FIELDS if c not in df.columns]
    if missing:
        raise ValueError(f"{label}: missing price column(s) {missing}; found {list(df.columns)}. "
                         "Rename your columns to open, high, low, close (and volume, amount)")
    prices = np.column_stack([_numeric_column(df, c, label) for c in PRICE_FIELDS])  # (T, 4)
    if "volume" not in df.columns:
        volume = amount = np.zeros(len(df))
    else:
        volume = _numeric_column(df, "volume", label)
        amount = _numeric_column(df, "amount", label) if "amount" in df.columns else volume * prices.mean(axis=1)
    arr = np.column_stack([prices, volume, amount])
    if np.isnan(arr).any():
        cols = [c for c, bad in zip(FIELDS, np.isnan(arr).any(axis=0)) if bad]
        raise ValueError(f"{label}: NaN values in column(s) {cols}; fill or drop those rows first")
    return arr


def _numeric_column(df: pd.DataFrame, name: str, label: str) -> np.ndarray:
    """Column ``name`` as float64 (T,), or a ValueError naming it."""
    column = df[name]
    if isinstance(column, pd.DataFrame):
        raise ValueError(f"{label}: {column.shape[1]} columns are named {name!r}; keep one")
    try:
        return column.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{label}: column {name!r} is not numeric ({exc}); convert it to numbers first") from None


def _stamps(ts: Any, *, label: str, expected: int | None = None) -> np.ndarray:
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(ts) if not isinstance(ts, pd.Index) else ts))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{label}: could not read timestamps ({exc}); pass datetimes") from None
    if expected is not None and len(idx) != expected:
        raise ValueError(f"{label}: {len(idx)} timestamps for {expected} rows; lengths must match")
    if len(idx) > 1 and not (np.diff(idx.asi8) > 0).all():
        raise ValueError(f"{label}: timestamps are not strictly increasing; sort the rows by time and drop duplicates")
    return time_features(idx)


class KronosPredictor(BatchPredictor):
    """Kronos forecasting with the original public API (and the fast batched engine underneath).

    ``KronosPredictor(model, tokenizer, device=None, max_context=512, clip=5)``; keyword-only
    extras: dtype, method ("fast" | "reference"), compile, memory_budget_mb.
    """

    @classmethod
    def from_pretrained(cls, name: str = "kronos-small", *, tokenizer: str | None = None,
                        revision: str | None = None, tokenizer_revision: str | None = None,
                        max_context: int | None = None, device: str | None = None,
                        cache_dir: str | os.PathLike[str] | None = None, local_files_only: bool | None = None,
                        clip: float = 5.0, dtype: str | None = None, **kwargs: Any) -> KronosPredictor:
        """Load a preset (``kronos-small``, ``kronos-demo``...), a Hub id (with ``tokenizer``) or a
        local directory (a checkpoint, or one holding ``predictor/`` and ``tokenizer/``).

        Resolution and identity are ``model.spec.ModelSpec``'s, so the predictor shares forecast-cache
        entries with ``forecasters.build_forecaster(name)``. kwargs: method, compile, memory_budget_mb.
        """
        spec = ModelSpec.resolve(name, tokenizer=tokenizer, revision=revision, tokenizer_revision=tokenizer_revision,
                                 max_context=max_context, clip=clip, dtype=dtype, local_files_only=local_files_only,
                                 cache_dir=cache_dir)
        return cls.from_spec(spec, device=device, **kwargs)

    # -- the original API ------------------------------------------------------------------
    def predict(self, df: pd.DataFrame, x_timestamp: Any, y_timestamp: Any, pred_len: int, T: float = 1.0,
                top_k: int = 0, top_p: float = 0.9, sample_count: int = 1, verbose: bool = True, *,
                seed: int | None = None, method: str | None = None) -> pd.DataFrame:
        """Mean forecast (pred_len rows indexed by y_timestamp; open, high, low, close, volume, amount)."""
        return self.predict_batch([df], [x_timestamp], [y_timestamp], pred_len, T, top_k, top_p, sample_count,
                                  verbose, seed=seed, method=method)[0]

    def predict_batch(self, df_list: Sequence[pd.DataFrame], x_timestamp_list: Sequence[Any],
                      y_timestamp_list: Sequence[Any], pred_len: int, T: float = 1.0, top_k: int = 0,
                      top_p: float = 0.9, sample_count: int = 1, verbose: bool = True, *,
                      seed: int | None = None, method: str | None = None) -> list[pd.DataFrame]:
        """Mean forecasts for several series; unlike the original, lengths may differ."""
        result = self.forecast_frames(df_list, x_timestamp_list, y_timestamp_list, horizon=pred_len,
                                      sampling=SamplingSpec(sample_count, T, top_k, top_p, seed or 0),
                                      quiet=not verbose, method=method)
        mean = result.mean
        out = []
        for i, ys in enumerate(y_timestamp_list):
            index = pd.DatetimeIndex(pd.to_datetime(pd.Series(ys) if not isinstance(ys, pd.Index) else ys))
            out.append(pd.DataFrame(mean[i], columns=list(FIELDS), index=index))
        return out

    # -- probabilistic API -----------------------------------------------------------------
    def forecast_frames(self, df_list: Sequence[pd.DataFrame], x_timestamp_list: Sequence[Any],
                        y_timestamp_list: Sequence[Any], *, horizon: int, sampling: SamplingSpec | None = None,
                        quantile_levels: Sequence[float] = DEFAULT_QUANTILES, quiet: bool | None = None,
                        method: str | None = None, names: Sequence[str] | None = None) -> ForecastResult:
        """Sample paths (B, S, H, 6) for DataFrame inputs; see ``BatchPredictor.forecast_arrays``."""
        if not (len(df_list) == len(x_timestamp_list) == len(y_timestamp_list)):
            raise ValueError(f"got {len(df_list)} frames, {len(x_timestamp_list)} x_timestamp and "
                             f"{len(y_timestamp_list)} y_timestamp entries; pass one of each per series")
        def label(i):
            return (f"series {i}" + (f" ({names[i]!r})" if names else ""))
        xs, past, fut = [], [], []
        for i, (df, xt, yt) in enumerate(zip(df_list, x_timestamp_list, y_timestamp_list)):
            xs.append(frame_to_array(df, label=label(i)))
            past.append(_stamps(xt, label=f"{label(i)} x_timestamp", expected=len(df)))
            fut.append(_stamps(yt, label=f"{label(i)} y_timestamp"))
        return self.forecast_arrays(xs, past, fut, horizon=horizon, sampling=sampling,
                                    quantile_levels=quantile_levels, quiet=quiet, method=method, names=names)

    def forecast(self, df: pd.DataFrame, x_timestamp: Any, y_timestamp: Any, *, horizon: int,
                 samples: int = 20, T: float = 1.0, top_k: int = 0, top_p: float = 0.9, seed: int = 0,
                 quantile_levels: Sequence[float] = DEFAULT_QUANTILES, quiet: bool | None = None) -> ForecastResult:
        """The forecast distribution of one series: ForecastResult with paths (1, samples, horizon, 6)."""
        return self.forecast_frames([df], [x_timestamp], [y_timestamp], horizon=horizon,
                                    sampling=SamplingSpec(samples, T, top_k, top_p, seed),
                                    quantile_levels=quantile_levels, quiet=quiet)
