"""Publishing a file others read (the nightly signals): unchanged means untouched, changed needs ``force``.

``publish_table`` writes a table atomically (``writer.write_table_if_changed``): a file that
already holds the same bytes keeps its inode and mtime; a file with other content (another
seed, model or data for the same as-of) is replaced only with ``force=True``, and the sha256 of
every replaced version is carried into the provenance beside it (``<file>.json``), newest first.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kronos_quant.errors import ConfigError
from kronos_quant.report.writer import write_table_if_changed

__all__ = ["Published", "publish_table", "file_sha256", "provenance_path"]


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file's bytes ("" when there is no file)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


@dataclass(frozen=True)
class Published:
    """Where a table was published, whether it was (re)written, its sha256 and the versions it replaced."""

    path: Path
    written: bool
    sha256: str
    replaced: list[dict[str, Any]] = field(default_factory=list)

    @property
    def provenance_path(self) -> Path:
        """The provenance file beside the published one (``<file>.json``)."""
        return provenance_path(self.path)

    def provenance(self) -> dict[str, Any]:
        """``{"sha256", "replaced"}`` for the provenance (replaced: ``[{"sha256"}]``, newest first)."""
        return {"sha256": self.sha256, "replaced": list(self.replaced)}


def provenance_path(path: Path) -> Path:
    """The provenance file beside a published file: ``<file>.json``."""
    return path.with_suffix(path.suffix + ".json")


def _replaced_before(prov_path: Path) -> list[dict[str, Any]]:
    """The ``replaced`` list recorded in an existing provenance file (empty when absent or unreadable)."""
    try:
        return list(json.loads(prov_path.read_text())["provenance"].get("replaced") or [])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def publish_table(table: Any, path: str | Path, *, force: bool = False, what: str = "a table") -> Published:
    """Write ``table`` to ``path`` unless it holds these bytes already; ConfigError when it holds other
    content and ``force`` is False (the message names the file, its hash and ``--force``).

    what: how the content is called in the message, e.g. "signals for 2017-06-30".
    """
    path = Path(path)
    previous = file_sha256(path)
    try:
        written = write_table_if_changed(table, path, replace=force)
    except FileExistsError:
        raise ConfigError(f"{path} already holds other {what} (sha256 {previous[:12]}); a published file is not "
                          "replaced silently: rerun with --force to replace it (its provenance then keeps the old "
                          "file's hash)") from None
    replaced = ([{"sha256": previous}] if written and previous else []) + _replaced_before(provenance_path(path))
    return Published(path, written, file_sha256(path), replaced)
