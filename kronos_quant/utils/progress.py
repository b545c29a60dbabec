"""Progress bars that appear only for interactive use.

A bar shows counts and an ETA on a TTY; under cron, CI or a redirect (stderr not a TTY), and
with ``quiet=True`` or ``KRONOS_QUANT_QUIET=1``, nothing is drawn.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_enabled", "make_progress"]

_QUIET = {"value": False}


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar of this process."""
    _QUIET["value"] = bool(quiet)


def progress_enabled(quiet: bool | None = None) -> bool:
    if quiet or _QUIET["value"] or os.environ.get("KRONOS_QUANT_QUIET") == "1":
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def make_progress(total: int, desc: str, *, quiet: bool | None = None, unit: str = "it", **kwargs: Any) -> tqdm:
    """A tqdm bar (disabled when not interactive). Use as a context manager and call ``update``."""
    return tqdm(total=total, desc=desc, unit=unit, disable=not progress_enabled(quiet), leave=False, **kwargs)
