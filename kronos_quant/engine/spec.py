"""``RollingSpec``: everything that defines a rolling forecast run, in one frozen value.

Which (instrument, as-of) pairs are forecast (lookback, rebalance, min_history, start, end),
what each forecast is (horizon, sampling, quantile levels, keep_samples) and how many series go
to the forecaster at once (batch_series). ``engine.run_rolling`` takes it with a panel, a
forecaster and an executor (local or Ray); the Ray actors receive the same value. It is checked
once, when it is made, so every executor sees a valid spec.

Knows nothing about models, panels or where the work runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kronos_quant.engine.cache import config_key
from kronos_quant.schema import DEFAULT_QUANTILES, SamplingSpec, quantile_column

__all__ = ["RollingSpec"]


@dataclass(frozen=True)
class RollingSpec:
    """A rolling run. Bars and counts are in bars of the panel's calendar.

    lookback: bars of history per forecast (windows hold bars <= the as-of bar only).
    horizon: bars ahead (H >= 1). rebalance: every k bars of the union calendar, or a sequence of
    as-of dates (each mapped to the last bar on or before it). min_history: the shortest window
    kept near the start of a history or after a missing value (default: lookback). start, end:
    as-of dates kept (inclusive; a date-only end includes the whole day; see ``data.bounds``).
    sampling: how sample paths are drawn (its seed makes the table reproducible). quantile_levels:
    the ``f_q*`` columns (distinct, in (0, 1)). keep_samples: add the ``close_samples`` column.
    batch_series: series per forecaster call (the table does not depend on it).
    """

    lookback: int
    horizon: int
    rebalance: int | tuple[Any, ...] = 1
    min_history: int | None = None
    start: Any = None
    end: Any = None
    sampling: SamplingSpec = SamplingSpec()
    quantile_levels: tuple[float, ...] = DEFAULT_QUANTILES
    keep_samples: bool = False
    batch_series: int = 128

    def __post_init__(self) -> None:
        if self.lookback < 1:
            raise ValueError(f"lookback must be >= 1, got {self.lookback}")
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if self.min_history is not None and not 1 <= self.min_history <= self.lookback:
            raise ValueError(f"min_history must lie in [1, lookback={self.lookback}], got {self.min_history}")
        if self.batch_series < 1:
            raise ValueError(f"batch_series must be >= 1, got {self.batch_series}")
        if not isinstance(self.sampling, SamplingSpec):
            raise TypeError(f"sampling must be a SamplingSpec, got {type(self.sampling).__name__}")
        object.__setattr__(self, "rebalance", _rebalance(self.rebalance))
        object.__setattr__(self, "quantile_levels", _levels(self.quantile_levels))

    @property
    def history(self) -> int:
        """The shortest window kept (``min_history``, default ``lookback``)."""
        return self.lookback if self.min_history is None else int(self.min_history)

    def cache_config(self, identity: dict[str, Any]) -> str:
        """The forecast-cache config key of this run with a forecaster of ``identity``: it covers
        everything that changes a forecast except the window itself (see ``engine.cache``)."""
        return config_key(identity, self.sampling, horizon=self.horizon, quantile_levels=self.quantile_levels,
                          keep_samples=self.keep_samples)

    def cache_description(self, identity: dict[str, Any]) -> dict[str, Any]:
        """What a cached batch was computed with (stored beside it for humans and audits)."""
        return {"identity": identity, "sampling": asdict(self.sampling), "horizon": self.horizon,
                "quantile_levels": list(self.quantile_levels), "keep_samples": self.keep_samples}


def _rebalance(value: Any) -> int | tuple[Any, ...]:
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        raise ValueError(f"rebalance must be an int (every k bars) or a sequence of dates, got {value!r}")
    if isinstance(value, Sequence) or hasattr(value, "__iter__"):
        return tuple(value)
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"rebalance must be an int (every k bars) or a sequence of dates, got {value!r}") from None
    if k != value or k < 1:
        raise ValueError(f"rebalance must be >= 1 bars or a sequence of dates, got {value!r}")
    return k


def _levels(quantile_levels: Sequence[float]) -> tuple[float, ...]:
    levels = tuple(float(q) for q in quantile_levels)
    for q in levels:
        quantile_column("x", q)  # raises ValueError for levels outside (0, 1)
    if len(set(levels)) != len(levels):
        raise ValueError(f"quantile_levels must be distinct, got {levels}")
    return levels
