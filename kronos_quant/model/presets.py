"""Named presets for the published Kronos checkpoints (and the bundled demo model).

A preset ties a predictor to its tokenizer and context length, so ``kronos-small`` is enough
to load a working pair. Revisions are pinned where the original project pins them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ModelPreset", "PRESETS", "get_preset", "BUILTIN_DIR"]

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "builtin"


@dataclass(frozen=True)
class ModelPreset:
    """model_id/tokenizer_id: Hub ids or ``builtin:NAME``; revisions: commit hashes (None = main)."""

    name: str
    model_id: str
    tokenizer_id: str
    max_context: int
    model_revision: str | None = None
    tokenizer_revision: str | None = None
    description: str = ""


PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in [
        ModelPreset("kronos-mini", "NeoQuasar/Kronos-mini", "NeoQuasar/Kronos-Tokenizer-2k", 2048,
                    description="4.1M parameters, context 2048"),
        ModelPreset("kronos-small", "NeoQuasar/Kronos-small", "NeoQuasar/Kronos-Tokenizer-base", 512,
                    model_revision="901c26c1332695a2a8f243eb2f37243a37bea320",
                    tokenizer_revision="0e0117387f39004a9016484a186a908917e22426",
                    description="24.7M parameters, context 512"),
        ModelPreset("kronos-base", "NeoQuasar/Kronos-base", "NeoQuasar/Kronos-Tokenizer-base", 512,
                    tokenizer_revision="0e0117387f39004a9016484a186a908917e22426",
                    description="102.3M parameters, context 512"),
        ModelPreset("kronos-demo", "builtin:kronos-demo/predictor", "builtin:kronos-demo/tokenizer", 261,
                    description="small demo model bundled with kronos-quant (trained on S&P 500 daily "
                                "2013-2016 with 256 + 5 bar windows; see its model card)"),
    ]
}


def get_preset(name: str) -> ModelPreset | None:
    """The preset called ``name`` (case-insensitive; ``builtin:kronos-demo`` also works), or None."""
    key = name.lower().removeprefix("builtin:")
    return PRESETS.get(key)
