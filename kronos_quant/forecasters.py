"""Forecasters by name: Kronos checkpoints (loaded lazily) and the model-free baselines.

``build_forecaster("kronos-demo")`` returns an object satisfying ``schema.Forecaster`` whose
``identity`` is computed from the checkpoint files alone (``model.spec.ModelSpec``), so a run
whose forecasts are all in the cache never loads a model, and the cache entries are the ones
``KronosPredictor.from_pretrained("kronos-demo")`` uses. ``list_models`` (presets and models in
the local Hugging Face cache) lives in ``model.catalog`` and is re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from kronos_quant.baselines import HistoricalDriftForecaster, LinearForecaster, RandomWalkForecaster
from kronos_quant.errors import ConfigError
from kronos_quant.model.catalog import list_models
from kronos_quant.model.spec import ModelSpec
from kronos_quant.schema import DEFAULT_QUANTILES, Forecaster, ForecastResult, SamplingSpec

__all__ = ["BASELINES", "LazyKronosForecaster", "build_forecaster", "forecaster_from_config", "list_models"]

logger = logging.getLogger(__name__)

BASELINES = {
    "random_walk": RandomWalkForecaster,
    "historical_drift": HistoricalDriftForecaster,
    "linear": LinearForecaster,
}


class LazyKronosForecaster:
    """A Kronos ``KronosPredictor`` of ``spec`` that is loaded on the first ``forecast_arrays`` call.

    ``identity`` is ``spec.identity()`` (names, revisions, digests of the checkpoint files and
    the predictor settings): it reads the files but loads no weights. device: None/"auto" = the
    predictor's choice (cuda > mps > cpu).
    """

    def __init__(self, spec: ModelSpec, *, device: str | None = None) -> None:
        self.spec = spec
        self.device = None if device in (None, "auto") else device
        self._predictor: Any = None
        self._identity: dict[str, Any] | None = None

    @property
    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = self.spec.identity()
        return self._identity

    @property
    def predictor(self) -> Any:
        """The loaded ``KronosPredictor`` (loads on first access)."""
        if self._predictor is None:
            from kronos_quant.predictor import KronosPredictor

            logger.info("loading model %s (tokenizer %s)", self.spec.model_id, self.spec.tokenizer_id)
            self._predictor = KronosPredictor.from_spec(self.spec, device=self.device)
        return self._predictor

    @property
    def loaded(self) -> bool:
        return self._predictor is not None

    def forecast_arrays(self, series: Sequence[np.ndarray], past_stamps: Sequence[np.ndarray],
                        future_stamps: Sequence[np.ndarray], *, horizon: int, sampling: SamplingSpec,
                        seeds: Sequence[int] | None = None,
                        quantile_levels: Sequence[float] = DEFAULT_QUANTILES) -> ForecastResult:
        return self.predictor.forecast_arrays(series, past_stamps, future_stamps, horizon=horizon, sampling=sampling,
                                              seeds=seeds, quantile_levels=quantile_levels, quiet=True)


def build_forecaster(name: str, *, tokenizer: str | None = None, revision: str | None = None,
                     tokenizer_revision: str | None = None, device: str | None = None, dtype: str = "float32",
                     max_context: int | None = None, local_files_only: bool | None = None) -> Forecaster:
    """``baseline:random_walk|historical_drift|linear`` or a Kronos preset / Hub id / directory
    (resolved by ``ModelSpec.resolve``; loaded lazily)."""
    if name.startswith("baseline:"):
        kind = name.split(":", 1)[1]
        if kind not in BASELINES:
            raise ConfigError(f"model.id {name!r}: unknown baseline; choose one of "
                              f"{', '.join('baseline:' + k for k in BASELINES)}")
        return BASELINES[kind]()
    spec = ModelSpec.resolve(name, tokenizer=tokenizer, revision=revision, tokenizer_revision=tokenizer_revision,
                             max_context=max_context, dtype=dtype, local_files_only=local_files_only)
    return LazyKronosForecaster(spec, device=device)


def forecaster_from_config(model: Any, *, device: str | None = None) -> Forecaster:
    """The forecaster of a strategy config's ``model`` section (``config.ModelConfig``); ``device``
    overrides ``model.device``."""
    return build_forecaster(model.id, tokenizer=model.tokenizer, revision=model.revision,
                            tokenizer_revision=model.tokenizer_revision, device=device or model.device,
                            dtype=model.dtype, max_context=model.max_context, local_files_only=model.local_files_only)
