"""``key.path=value`` overrides of nested config mappings (``--set`` on the command line).

Values are parsed as YAML (``5``, ``true``, ``[1, 2]``, ``null``); missing sections are created.
Used by ``kronos_quant.config`` (strategies) and ``kronos_quant.training.config`` (fine-tuning).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from kronos_quant.errors import ConfigError

__all__ = ["parse_override", "apply_overrides"]


def parse_override(text: str) -> tuple[list[str], Any]:
    """``key.path=value`` -> (["key", "path"], value parsed as YAML, e.g. 5, true, [1, 2], null)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key.path=value, e.g. --set forecast.horizon=10")
    key, value = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {text!r}: empty key path")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return parts, parsed


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any] | Sequence[str] | None, *,
                    source: str = "--set") -> dict[str, Any]:
    """A deep copy of ``raw`` with overrides set: ``["a.b=3", ...]`` (values parsed as YAML) or ``{"a.b": 3}``.

    Missing sections are created; a key path through a value that is not a mapping is a ConfigError.
    """
    out = copy.deepcopy(dict(raw))
    if isinstance(overrides, Mapping):
        items = [([p for p in str(k).split(".") if p], v) for k, v in overrides.items()]
    else:
        items = [parse_override(text) for text in overrides or []]
    for parts, value in items:
        node = out
        for i, p in enumerate(parts[:-1]):
            if node.get(p) is None:
                node[p] = {}
            if not isinstance(node[p], dict):
                raise ConfigError(f"{source}: override {'.'.join(parts)}: {'.'.join(parts[:i + 1])} is not a mapping")
            node = node[p]
        node[parts[-1]] = value
    return out
