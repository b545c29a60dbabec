"""``ModelSpec``: one resolved Kronos model -- which checkpoint pair, which revisions, which settings.

``ModelSpec.resolve(name, ...)`` is the only place that turns a preset (``kronos-small``,
``kronos-demo``), a local directory holding ``predictor/`` and ``tokenizer/``, or a Hub id (with
its tokenizer) into a (predictor, tokenizer) pair, and ``identity()`` is the only definition of
what a Kronos forecast depends on: the checkpoint names and revisions, digests of their files,
max_context, the z-score clip, the dtype and the kronos-quant version. The identity is computed
from the checkpoint files alone, so a run whose forecasts are all cached never loads a model.
``KronosPredictor.from_pretrained`` and ``forecasters.build_forecaster`` both go through it, so
the same name gives the same forecast-cache key on either route.

Errors: a name that needs a tokenizer -> ConfigError; missing files -> ModelUnavailableError;
malformed files -> CheckpointError (from ``model.hub``).
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kronos_quant._version import __version__
from kronos_quant.errors import ConfigError
from kronos_quant.model.hub import CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME, resolve_checkpoint_dir
from kronos_quant.model.presets import PRESETS, get_preset

if TYPE_CHECKING:  # the modules (torch) are imported where they are loaded, so resolving a name stays light
    from kronos_quant.model.kronos import Kronos
    from kronos_quant.model.tokenizer import KronosTokenizer

__all__ = ["ModelSpec", "DTYPE_NAMES", "canonical_dtype", "kronos_identity", "checkpoint_digest"]

DEFAULT_CONTEXT = 512
DEFAULT_CLIP = 5.0
DTYPE_NAMES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
               "float16": "float16", "fp16": "float16"}


def canonical_dtype(name: str | None) -> str:
    """``"bf16"`` -> ``"bfloat16"`` etc.; None -> ``"float32"``. ConfigError for unknown names."""
    if name is None:
        return "float32"
    key = str(name).lower().removeprefix("torch.")
    if key not in DTYPE_NAMES:
        raise ConfigError(f"dtype must be one of {sorted(DTYPE_NAMES)}, got {name!r}")
    return DTYPE_NAMES[key]


def kronos_identity(*, model_id: str, revision: str | None, tokenizer_id: str, tokenizer_revision: str | None,
                    weights: str | None, tokenizer_weights: str | None, max_context: int, clip: float,
                    dtype: str) -> dict[str, Any]:
    """The identity dict of a Kronos forecaster (JSON-serialisable; it keys the forecast cache).

    weights / tokenizer_weights: content digests (of the checkpoint files, or of the in-memory
    modules' configs and tensors when there are no files).
    """
    return {"kind": "kronos", "model_id": model_id, "revision": revision, "tokenizer_id": tokenizer_id,
            "tokenizer_revision": tokenizer_revision, "weights": weights, "tokenizer_weights": tokenizer_weights,
            "max_context": int(max_context), "clip": float(clip), "dtype": canonical_dtype(dtype),
            "kronos_quant": __version__}


@functools.lru_cache(maxsize=64)
def _digest_files(paths: tuple[str, ...], stamps: tuple[tuple[int, int], ...]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(Path(path).name.encode() + b"\x00")
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def checkpoint_digest(directory: str | os.PathLike[str]) -> str:
    """16 hex digits of sha256 over a checkpoint directory's config.json and weights file (memoised
    per file size and modification time, so a process reads each checkpoint once)."""
    d = Path(directory)
    weights = d / WEIGHTS_NAME if (d / WEIGHTS_NAME).is_file() else d / LEGACY_WEIGHTS_NAME
    files = [p for p in (d / CONFIG_NAME, weights) if p.is_file()]
    stats = [p.stat() for p in files]
    return _digest_files(tuple(str(p) for p in files), tuple((s.st_size, s.st_mtime_ns) for s in stats))


@dataclass(frozen=True)
class ModelSpec:
    """A resolved Kronos (predictor, tokenizer) pair and the predictor settings that change forecasts.

    model_id / tokenizer_id: Hub ids, local directories or ``builtin:NAME``; revisions: commits
    (None = the Hub's main, or not applicable). max_context: the model's context in tokens.
    clip: z-score clip of the inputs. dtype: float32, bfloat16 or float16 (the last two on CUDA
    only). local_files_only / cache_dir: how Hub files are found (they do not change forecasts).
    """

    model_id: str
    tokenizer_id: str
    revision: str | None = None
    tokenizer_revision: str | None = None
    max_context: int = DEFAULT_CONTEXT
    clip: float = DEFAULT_CLIP
    dtype: str = "float32"
    local_files_only: bool | None = None
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.max_context < 1:
            raise ConfigError(f"max_context must be >= 1, got {self.max_context}")
        if not self.clip > 0:
            raise ConfigError(f"clip must be > 0, got {self.clip}")
        object.__setattr__(self, "dtype", canonical_dtype(self.dtype))
        object.__setattr__(self, "clip", float(self.clip))

    @classmethod
    def resolve(cls, name: str | os.PathLike[str], *, tokenizer: str | None = None, revision: str | None = None,
                tokenizer_revision: str | None = None, max_context: int | None = None, clip: float = DEFAULT_CLIP,
                dtype: str | None = None, local_files_only: bool | None = None,
                cache_dir: str | os.PathLike[str] | None = None) -> ModelSpec:
        """A preset (its ids, pinned revisions and context; ``tokenizer`` overrides its tokenizer),
        a directory with ``predictor/`` and ``tokenizer/``, or a Hub id / checkpoint directory
        plus ``tokenizer``. Touches no network and reads no weights."""
        text = str(name)
        preset = get_preset(text) if not Path(text).exists() else None
        common = dict(clip=clip, dtype=canonical_dtype(dtype), local_files_only=local_files_only,
                      cache_dir=None if cache_dir is None else str(cache_dir))
        if preset is not None:
            if preset.model_id.startswith("builtin:") and (revision or tokenizer_revision):
                raise ConfigError(f"model {text!r} is bundled with kronos-quant and has no Hub revisions, but "
                                  f"revision={revision!r} / tokenizer_revision={tokenizer_revision!r} were given "
                                  "(e.g. kronos-small's pins left in a strategy file); remove model.revision and "
                                  "model.tokenizer_revision")
            return cls(preset.model_id, tokenizer or preset.tokenizer_id,
                       revision=revision or preset.model_revision,
                       tokenizer_revision=tokenizer_revision or (preset.tokenizer_revision if tokenizer is None
                                                                 else None),
                       max_context=max_context or preset.max_context, **common)  # type: ignore[arg-type]
        pair = Path(text).expanduser()
        if (pair / "predictor").is_dir():
            return cls(str(pair / "predictor"), tokenizer or str(pair / "tokenizer"), revision=revision,
                       tokenizer_revision=tokenizer_revision, max_context=max_context or DEFAULT_CONTEXT,
                       **common)  # type: ignore[arg-type]
        if tokenizer is None:
            raise ConfigError(
                f"model {text!r} is not a preset ({', '.join(PRESETS)}) or a directory holding predictor/ and "
                "tokenizer/; name its tokenizer too (tokenizer= in Python, model.tokenizer in a config), e.g. "
                "NeoQuasar/Kronos-Tokenizer-base")
        return cls(text, tokenizer, revision=revision, tokenizer_revision=tokenizer_revision,
                   max_context=max_context or DEFAULT_CONTEXT, **common)  # type: ignore[arg-type]

    def directories(self) -> tuple[Path, Path]:
        """Local (predictor, tokenizer) checkpoint directories; Hub files are downloaded if needed
        (ModelUnavailableError when they cannot be)."""
        kw: dict[str, Any] = dict(local_files_only=self.local_files_only, cache_dir=self.cache_dir)
        return (resolve_checkpoint_dir(self.model_id, revision=self.revision, **kw),
                resolve_checkpoint_dir(self.tokenizer_id, revision=self.tokenizer_revision, **kw))

    def digests(self) -> tuple[str, str]:
        """``checkpoint_digest`` of the (predictor, tokenizer) directories (reads the files, loads nothing)."""
        model_dir, tok_dir = self.directories()
        return checkpoint_digest(model_dir), checkpoint_digest(tok_dir)

    def identity(self) -> dict[str, Any]:
        """``kronos_identity`` of this spec, with the digests of its checkpoint files."""
        weights, tokenizer_weights = self.digests()
        return kronos_identity(model_id=self.model_id, revision=self.revision, tokenizer_id=self.tokenizer_id,
                               tokenizer_revision=self.tokenizer_revision, weights=weights,
                               tokenizer_weights=tokenizer_weights, max_context=self.max_context, clip=self.clip,
                               dtype=self.dtype)

    def load_modules(self) -> tuple[Kronos, KronosTokenizer]:
        """The (predictor, tokenizer) modules, loaded on the CPU in eval mode."""
        from kronos_quant.model.kronos import Kronos
        from kronos_quant.model.tokenizer import KronosTokenizer

        model_dir, tok_dir = self.directories()
        model = Kronos.from_pretrained(model_dir)
        tokenizer = KronosTokenizer.from_pretrained(tok_dir)
        model.source = {"name_or_path": self.model_id, "revision": self.revision, "directory": str(model_dir)}
        tokenizer.source = {"name_or_path": self.tokenizer_id, "revision": self.tokenizer_revision,
                            "directory": str(tok_dir)}
        return model, tokenizer
