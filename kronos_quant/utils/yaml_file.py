"""Reading a config file: safe YAML, one mapping at the top level, errors that name the file and the line.

Used by ``kronos_quant.config`` (strategy files) and ``kronos_quant.training.config`` (finetune files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kronos_quant.errors import ConfigError

__all__ = ["read_yaml_mapping"]


def read_yaml_mapping(path: Path, *, what: str, example: str) -> dict[str, Any]:
    """The top-level mapping of the YAML file ``path`` (an empty file: {}), loaded with ``yaml.safe_load``.

    what: how the error messages call the file ("config file"); example: a path that shows the
    fix for a missing file. Raises ConfigError for a missing file, invalid YAML (with its line
    and column) or a top level that is not a mapping.
    """
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found (working directory {Path.cwd()}); check the path, "
                          f"e.g. {example}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    return raw
