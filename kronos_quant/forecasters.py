"""Forecasters by name: Kronos checkpoints (loaded lazily) and the model-free baselines.

``build_forecaster("kronos-demo")`` returns an object satisfying ``schema.Forecaster`` whose
``identity`` is computed from the checkpoint files alone, so a run whose forecasts are all in the
cache never loads a model. Also lists presets and models in the local Hugging Face cache.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kronos_quant.baselines import HistoricalDriftForecaster, LinearForecaster, RandomWalkForecaster
from kronos_quant.errors import ConfigError
from kronos_quant.model.hub import WEIGHTS_NAME, resolve_checkpoint_dir
from kronos_quant.model.presets import PRESETS, get_preset
from kronos_quant.schema import DEFAULT_QUANTILES, ForecastResult, SamplingSpec

__all__ = ["BASELINES", "LazyKronosForecaster", "build_forecaster", "list_models"]

logger = logging.getLogger(__name__)

BASELINES = {
    "random_walk": RandomWalkForecaster,
    "historical_drift": HistoricalDriftForecaster,
    "linear": LinearForecaster,
}


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


class LazyKronosForecaster:
    """A Kronos ``KronosPredictor`` that is built on the first ``forecast_arrays`` call.

    name: preset, Hub id or local directory (``tokenizer`` needed unless a preset or a directory
    with predictor/ and tokenizer/). The identity names the model, revision and a digest of the
    weight files, plus the predictor settings.
    """

    def __init__(self, name: str, *, tokenizer: str | None = None, revision: str | None = None,
                 tokenizer_revision: str | None = None, device: str | None = None, dtype: str = "float32",
                 max_context: int | None = None, local_files_only: bool | None = None) -> None:
        self.name = name
        preset = get_preset(name)
        if preset is not None:
            self.model_id, self.tokenizer_id = preset.model_id, tokenizer or preset.tokenizer_id
            self.revision = revision or preset.model_revision
            self.tokenizer_revision = tokenizer_revision or (preset.tokenizer_revision if tokenizer is None else None)
            self.max_context = max_context or preset.max_context
        elif (Path(name) / "predictor").is_dir():
            self.model_id, self.tokenizer_id = str(Path(name) / "predictor"), tokenizer or str(Path(name) / "tokenizer")
            self.revision, self.tokenizer_revision = revision, tokenizer_revision
            self.max_context = max_context or 512
        else:
            if tokenizer is None:
                raise ConfigError(f"model.id {name!r} is not a preset ({', '.join(PRESETS)}) or a directory with "
                                  "predictor/ and tokenizer/; set model.tokenizer too (e.g. NeoQuasar/Kronos-Tokenizer-base)")
            self.model_id, self.tokenizer_id = name, tokenizer
            self.revision, self.tokenizer_revision = revision, tokenizer_revision
            self.max_context = max_context or 512
        self.device = None if device in (None, "auto") else device
        self.dtype = dtype
        self.local_files_only = local_files_only
        self._predictor: Any = None
        self._identity: dict[str, Any] | None = None

    def _dirs(self) -> tuple[Path, Path]:
        kw = dict(local_files_only=self.local_files_only)
        return (resolve_checkpoint_dir(self.model_id, revision=self.revision, **kw),
                resolve_checkpoint_dir(self.tokenizer_id, revision=self.tokenizer_revision, **kw))

    @property
    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            model_dir, tok_dir = self._dirs()
            self._identity = {
                "kind": "kronos", "model_id": self.model_id, "revision": self.revision,
                "tokenizer_id": self.tokenizer_id, "tokenizer_revision": self.tokenizer_revision,
                "weights": _file_digest(model_dir / WEIGHTS_NAME) if (model_dir / WEIGHTS_NAME).is_file() else None,
                "tokenizer_weights": (_file_digest(tok_dir / WEIGHTS_NAME)
                                      if (tok_dir / WEIGHTS_NAME).is_file() else None),
                "max_context": self.max_context, "clip": 5.0, "dtype": self.dtype,
            }
        return self._identity

    @property
    def predictor(self) -> Any:
        """The loaded ``KronosPredictor`` (loads on first access)."""
        if self._predictor is None:
            from kronos_quant.predictor import KronosPredictor

            logger.info("loading model %s (tokenizer %s)", self.model_id, self.tokenizer_id)
            self._predictor = KronosPredictor.from_pretrained(
                self.model_id, tokenizer=self.tokenizer_id, revision=self.revision,
                tokenizer_revision=self.tokenizer_revision, max_context=self.max_context, device=self.device,
                local_files_only=self.local_files_only, dtype=None if self.dtype == "float32" else self.dtype)
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
                     max_context: int | None = None, local_files_only: bool | None = None) -> Any:
    """``baseline:random_walk|historical_drift|linear`` or a Kronos preset / Hub id / directory."""
    if name.startswith("baseline:"):
        kind = name.split(":", 1)[1]
        if kind not in BASELINES:
            raise ConfigError(f"model.id {name!r}: unknown baseline; choose one of "
                              f"{', '.join('baseline:' + k for k in BASELINES)}")
        return BASELINES[kind]()
    return LazyKronosForecaster(name, tokenizer=tokenizer, revision=revision, tokenizer_revision=tokenizer_revision,
                                device=device, dtype=dtype, max_context=max_context, local_files_only=local_files_only)


def list_models() -> list[dict[str, Any]]:
    """Presets (with whether their files are available offline) and Kronos repos in the local HF cache."""
    rows: list[dict[str, Any]] = []
    for preset in PRESETS.values():
        try:
            resolve_checkpoint_dir(preset.model_id, revision=preset.model_revision, local_files_only=True)
            resolve_checkpoint_dir(preset.tokenizer_id, revision=preset.tokenizer_revision, local_files_only=True)
            available = True
        except Exception:  # not cached: fine, we only report it
            available = False
        rows.append({"name": preset.name, "model": preset.model_id, "tokenizer": preset.tokenizer_id,
                     "revision": preset.model_revision or "main", "context": preset.max_context,
                     "available_offline": available, "description": preset.description})
    try:
        from huggingface_hub import scan_cache_dir

        for repo in scan_cache_dir().repos:
            if "kronos" in repo.repo_id.lower():
                rows.append({"name": repo.repo_id, "model": repo.repo_id, "tokenizer": "",
                             "revision": ",".join(sorted(r.commit_hash[:8] for r in repo.revisions)),
                             "context": None, "available_offline": True,
                             "description": f"in the local Hugging Face cache ({repo.size_on_disk_str})"})
    except Exception as exc:  # no cache directory yet
        logger.debug("no Hugging Face cache to scan: %s", exc)
    return rows

