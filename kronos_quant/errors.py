"""Domain exceptions. Each carries a message that says what is wrong and how to fix it.

The CLI maps these classes to documented exit codes (see ``kronos_quant.cli``).
"""

from __future__ import annotations

__all__ = [
    "KronosQuantError",
    "ConfigError",
    "DataError",
    "ModelUnavailableError",
    "CheckpointError",
]


class KronosQuantError(Exception):
    """Base class of every error kronos-quant raises on purpose."""


class ConfigError(KronosQuantError, ValueError):
    """A strategy or training config is invalid (names the file and key path)."""


class DataError(KronosQuantError, ValueError):
    """Market data is missing, malformed or fails validation (names the file/column)."""


class ModelUnavailableError(KronosQuantError):
    """A model could not be found locally and could not be downloaded."""


class CheckpointError(KronosQuantError, ValueError):
    """A checkpoint exists but is malformed: bad config keys, tensor names/shapes, corrupt file."""
