"""Checkpoint loading and saving in the Hugging Face Hub layout.

A checkpoint is a directory (local, or a Hub repo at a revision) holding ``config.json`` (the
constructor's keyword arguments) and ``model.safetensors``. Only those two files are fetched.
Weights are read from safetensors; a ``pytorch_model.bin`` fallback for old local checkpoints
is read with ``weights_only=True`` and never from the Hub. Every failure is a
``CheckpointError`` or ``ModelUnavailableError`` that says what to do.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kronos_quant.errors import CheckpointError, ModelUnavailableError
from kronos_quant.utils.atomic import atomic_path, write_json_atomic

__all__ = ["HubMixin", "resolve_checkpoint_dir", "CONFIG_NAME", "WEIGHTS_NAME"]

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
LEGACY_WEIGHTS_NAME = "pytorch_model.bin"

T = TypeVar("T", bound="HubMixin")

if TYPE_CHECKING:  # torch is imported where weights are read or written, so resolving names stays light
    import torch


def _builtin_dir(name: str) -> Path:
    from kronos_quant.model.presets import BUILTIN_DIR

    path = BUILTIN_DIR / name.removeprefix("builtin:")
    if not (path / CONFIG_NAME).is_file():
        raise ModelUnavailableError(f"built-in model '{name}' is not installed (looked in {path}); "
                                    "reinstall kronos-quant or pass a Hub id or a local directory")
    return path


def resolve_checkpoint_dir(name_or_path: str | os.PathLike[str], *, revision: str | None = None,
                           cache_dir: str | os.PathLike[str] | None = None, local_files_only: bool | None = None,
                           token: str | bool | None = None, force_download: bool = False) -> Path:
    """A local directory holding config.json and the weights of ``name_or_path``.

    Local directories and ``builtin:`` names never touch the network. Hub ids download only
    ``config.json`` and ``model.safetensors`` (pinned to ``revision`` when given).
    """
    text = str(name_or_path)
    if text.startswith("builtin:"):
        return _builtin_dir(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path} is a file; pass the checkpoint directory holding {CONFIG_NAME} and "
                              f"{WEIGHTS_NAME}")
    looks_local = text.startswith((".", "/", "~")) or os.sep in text.strip("/").split("/", 1)[-1] or text.count("/") != 1
    if looks_local:
        raise ModelUnavailableError(f"'{text}' is neither an existing directory nor a Hub id like 'NeoQuasar/Kronos-small' "
                                    f"(or a preset: kronos-mini, kronos-small, kronos-base, kronos-demo)")
    return _download(text, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token,
                     force_download=force_download)


def _download(repo_id: str, *, revision: str | None, cache_dir: Any, local_files_only: bool | None,
              token: Any, force_download: bool) -> Path:
    from huggingface_hub import hf_hub_download

    offline_env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    local_only = bool(local_files_only) if local_files_only is not None else offline_env
    rev = f" at revision {revision}" if revision else ""
    try:
        config_file = hf_hub_download(repo_id, CONFIG_NAME, revision=revision, cache_dir=cache_dir,
                                      local_files_only=local_only, token=token, force_download=force_download)
        hf_hub_download(repo_id, WEIGHTS_NAME, revision=revision, cache_dir=cache_dir,
                        local_files_only=local_only, token=token, force_download=force_download)
    except Exception as exc:  # huggingface_hub raises many types (HTTP, offline, not found, ...)
        hint = (f"download it beforehand on a machine with Hub access (`huggingface-cli download {repo_id}"
                f"{' --revision ' + revision if revision else ''}`), pass a local directory holding "
                f"{CONFIG_NAME} and {WEIGHTS_NAME}, or check HF_HUB_OFFLINE"
                f" (now {'set' if offline_env else 'unset'}) and your network")
        name = type(exc).__name__
        if "RepositoryNotFound" in name:
            what = "the repository does not exist on the Hub (or needs a token)"
        elif "RevisionNotFound" in name:
            what = "that revision does not exist"
        else:
            what = "it is not in the local Hugging Face cache and the Hub could not be reached"
        raise ModelUnavailableError(f"cannot load model '{repo_id}'{rev}: {what} ({name}). To proceed, {hint}.") from None
    return Path(config_file).parent


def _read_config(directory: Path) -> dict[str, Any]:
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise CheckpointError(f"{directory}: no {CONFIG_NAME}; a checkpoint directory needs {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_path}: not valid JSON ({exc}); restore or re-download the file") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: expected a JSON object of constructor arguments")
    return config


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    import torch
    from safetensors.torch import load_file

    weights = directory / WEIGHTS_NAME
    if weights.is_file():
        try:
            return load_file(str(weights))
        except Exception as exc:  # safetensors raises SafetensorError for truncated/corrupt files
            raise CheckpointError(f"{weights} is truncated or corrupt ({type(exc).__name__}: {exc}); delete it and "
                                  "download or save the checkpoint again") from None
    legacy = directory / LEGACY_WEIGHTS_NAME
    if legacy.is_file():
        logger.warning("%s: reading legacy %s with weights_only=True; convert it with save_pretrained", directory,
                       LEGACY_WEIGHTS_NAME)
        try:
            state = torch.load(str(legacy), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{legacy} could not be read safely ({type(exc).__name__}: {exc})") from None
        if not isinstance(state, dict):
            raise CheckpointError(f"{legacy}: expected a state dict")
        return state
    raise CheckpointError(f"{directory}: no {WEIGHTS_NAME}; a checkpoint directory needs {CONFIG_NAME} and {WEIGHTS_NAME}")


class HubMixin:
    """``from_pretrained`` / ``save_pretrained`` for modules whose constructor takes the config keys."""

    config: dict[str, Any]

    @classmethod
    def config_keys(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters
        return [p for p in params if p != "self"]

    @classmethod
    def from_config(cls: type[T], config: dict[str, Any], *, source: str = "config") -> T:
        """Build a model from a config dict; unknown or missing keys raise CheckpointError naming them."""
        keys = cls.config_keys()
        unknown = sorted(set(config) - set(keys))
        missing = [k for k in keys if k not in config]
        if unknown or missing:
            parts = []
            if unknown:
                parts.append(f"unknown key(s) {unknown}")
            if missing:
                parts.append(f"missing key(s) {missing}")
            raise CheckpointError(f"{source}: {' and '.join(parts)} for {cls.__name__}; expected exactly {keys}")
        return cls(**config)

    @classmethod
    def from_pretrained(cls: type[T], name_or_path: str | os.PathLike[str], *, revision: str | None = None,
                        cache_dir: str | os.PathLike[str] | None = None, local_files_only: bool | None = None,
                        token: str | bool | None = None, force_download: bool = False,
                        map_location: str | torch.device = "cpu", strict: bool = True) -> T:
        """Load from a Hub id (optionally pinned to ``revision``), a local directory or ``builtin:NAME``.

        Presets (``kronos-small`` ...) resolve to their Hub id and pinned revision.
        """
        from kronos_quant.model.presets import get_preset

        preset = get_preset(str(name_or_path)) if not Path(str(name_or_path)).exists() else None
        if preset is not None:
            is_tok = cls.__name__ == "KronosTokenizer"
            name_or_path = preset.tokenizer_id if is_tok else preset.model_id
            if revision is None:
                revision = preset.tokenizer_revision if is_tok else preset.model_revision
        directory = resolve_checkpoint_dir(name_or_path, revision=revision, cache_dir=cache_dir,
                                           local_files_only=local_files_only, token=token, force_download=force_download)
        config = _read_config(directory)
        model = cls.from_config(config, source=str(directory / CONFIG_NAME))
        state = _read_weights(directory)
        model.load_checkpoint_state(state, source=str(directory), strict=strict)  # type: ignore[attr-defined]
        model.to(map_location)  # type: ignore[attr-defined]
        model.eval()  # type: ignore[attr-defined]
        model.source = {"name_or_path": str(name_or_path), "revision": revision, "directory": str(directory)}  # type: ignore[attr-defined]
        return model

    def load_checkpoint_state(self, state: dict[str, torch.Tensor], *, source: str = "state dict",
                              strict: bool = True) -> None:
        """Strictly load ``state``; names every missing/unexpected key and shape mismatch."""
        own = self.state_dict()  # type: ignore[attr-defined]
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        if shapes or (strict and (missing or unexpected)):
            parts = []
            if missing:
                parts.append(f"missing tensors {missing[:10]}{' ...' if len(missing) > 10 else ''}")
            if unexpected:
                parts.append(f"unexpected tensors {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}")
            if shapes:
                parts.append(f"wrong shapes {shapes[:10]}")
            raise CheckpointError(f"{source}: the weights do not match {type(self).__name__}({self.config}): "
                                  f"{'; '.join(parts)}. Check that config.json belongs to these weights.")
        self.load_state_dict(state, strict=strict)  # type: ignore[attr-defined]

    def save_pretrained(self, save_directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (atomically) into ``save_directory``."""
        from safetensors.torch import save_file

        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}  # type: ignore[attr-defined]
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
        write_json_atomic(directory / CONFIG_NAME, self.config)
        return directory
