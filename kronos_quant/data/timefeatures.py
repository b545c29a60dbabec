"""Calendar features of bar timestamps, in the order the Kronos model expects.

Knows nothing about models; returns plain integer arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["time_features", "TIME_FEATURE_NAMES"]

TIME_FEATURE_NAMES: tuple[str, ...] = ("minute", "hour", "weekday", "day", "month")


def time_features(timestamps: Any) -> np.ndarray:
    """(T, 5) int64 features minute, hour, weekday (Monday = 0), day of month, month.

    ``timestamps`` may be a pandas Series/Index, a numpy datetime64 array, a polars Series or
    a list of datetimes. Time zones are kept as given (features are wall-clock values).
    """
    if hasattr(timestamps, "to_pandas") and not isinstance(timestamps, (pd.Series, pd.Index)):
        timestamps = timestamps.to_pandas()
    idx = pd.DatetimeIndex(pd.to_datetime(timestamps))
    return np.stack(
        [idx.minute, idx.hour, idx.day_of_week, idx.day, idx.month], axis=-1
    ).astype(np.int64).reshape(len(idx), 5)
