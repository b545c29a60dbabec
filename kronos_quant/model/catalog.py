"""The models kronos-quant knows about: presets and Kronos checkpoints in the local Hugging Face cache.

Reads names and files only (no torch), so ``kronos-quant models list`` answers at once.
"""

from __future__ import annotations

import logging
from typing import Any

from kronos_quant.model.presets import PRESETS
from kronos_quant.model.spec import ModelSpec

__all__ = ["list_models"]

logger = logging.getLogger(__name__)


def list_models() -> list[dict[str, Any]]:
    """Presets (with whether their files are available offline) and Kronos repos in the local HF cache.

    One dict per model: name, model, tokenizer, revision, context (tokens or None),
    available_offline (bool), description.
    """
    rows: list[dict[str, Any]] = []
    for preset in PRESETS.values():
        try:
            ModelSpec.resolve(preset.name, local_files_only=True).directories()
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
