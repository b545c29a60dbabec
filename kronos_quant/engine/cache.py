"""Content-addressed, crash-safe Parquet cache of forecast-table rows.

Layout: ``root/<config key>/batch-<hash>.parquet``. The config key hashes everything shared by a
run (forecaster identity, sampling spec, horizon, quantile levels, keep_samples); each row also
carries ``cache_key``, the hash of the config key and one series' exact inputs (window values,
past and future timestamps, per-series seed). Each finished batch is written as its own file via
an atomic rename, so a killed run loses at most the batch in flight and never leaves a corrupt
file; an unreadable file found on load is skipped with a warning.

Knows nothing about models, panels or how windows are chosen: it stores and returns table rows.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kronos_quant.schema import SamplingSpec
from kronos_quant.utils.atomic import atomic_path, write_json_atomic
from kronos_quant.utils.hashing import stable_hash

__all__ = ["CacheStats", "ForecastCache", "config_key", "window_key", "KEY_COLUMN"]

logger = logging.getLogger(__name__)

KEY_COLUMN = "cache_key"
_CACHE_FORMAT = 1


@dataclass
class CacheStats:
    """Counts since the cache object was made: hits/misses per series forecast (one key)."""

    hits: int = 0
    misses: int = 0
    batches_written: int = 0
    rows_written: int = 0
    files_ignored: int = 0


def config_key(
    identity: dict[str, Any],
    sampling: SamplingSpec,
    *,
    horizon: int,
    quantile_levels: Sequence[float],
    keep_samples: bool,
) -> str:
    """Hash of everything a run's forecasts share."""
    return stable_hash(
        "kq-forecast-config",
        _CACHE_FORMAT,
        identity,
        asdict(sampling),
        int(horizon),
        [float(q) for q in quantile_levels],
        bool(keep_samples),
    )


def window_key(
    config: str,
    series: np.ndarray,
    past_ns: np.ndarray,
    past_stamps: np.ndarray,
    target_ns: np.ndarray,
    future_stamps: np.ndarray,
    seed: int,
) -> str:
    """Hash of one series' exact inputs under a config key: values (T, 6), timestamps (T,) and
    time features (T, 5) of the past bars, timestamps (H,) and features (H, 5) of the targets, seed."""
    h = hashlib.sha256(config.encode())
    for arr, dtype in (
        (series, np.float64),
        (past_ns, np.int64),
        (past_stamps, np.int64),
        (target_ns, np.int64),
        (future_stamps, np.int64),
    ):
        a = np.ascontiguousarray(arr, dtype=dtype)
        h.update(repr(a.shape).encode())
        h.update(memoryview(a).cast("B"))
    h.update(int(seed).to_bytes(16, "little", signed=True))
    return h.hexdigest()


class ForecastCache:
    """A directory of Parquet batches; rows are looked up by ``cache_key``.

    Each config's files are read once, lazily, on the first lookup for that config.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.stats = CacheStats()
        self._frames: dict[str, list[pl.DataFrame]] = {}
        self._keys: dict[str, set[str]] = {}
        self._lock = threading.RLock()

    def _dir(self, config: str) -> Path:
        return self.root / config[:24]

    def _load(self, config: str) -> None:
        with self._lock:
            self._load_unlocked(config)

    def _load_unlocked(self, config: str) -> None:
        if config in self._frames:
            return
        frames: list[pl.DataFrame] = []
        directory = self._dir(config)
        for path in sorted(directory.glob("batch-*.parquet")) if directory.is_dir() else []:
            try:
                frame = pl.read_parquet(path)
                if KEY_COLUMN not in frame.columns:
                    raise ValueError(f"no {KEY_COLUMN!r} column")
            except Exception as exc:  # a corrupt or foreign file must never stop a run
                self.stats.files_ignored += 1
                msg = f"ignoring unreadable forecast-cache file {path}: {exc}; delete it to silence this"
                logger.warning(msg)
                warnings.warn(msg, RuntimeWarning, stacklevel=3)
                continue
            frames.append(frame)
        self._frames[config] = frames
        self._keys[config] = set().union(*(set(f[KEY_COLUMN].to_list()) for f in frames)) if frames else set()

    def contains(self, config: str, keys: Sequence[str]) -> np.ndarray:
        """(N,) bool: which keys are cached (does not touch the stats)."""
        with self._lock:
            self._load_unlocked(config)
            known = self._keys[config]
            return np.array([k in known for k in keys], dtype=bool)

    def lookup(self, config: str, keys: Sequence[str]) -> pl.DataFrame | None:
        """Cached rows (with ``cache_key``) for the keys found, or None; counts hits and misses."""
        with self._lock:
            found = self.contains(config, keys)
            n_hits = int(found.sum())
            self.stats.hits += n_hits
            self.stats.misses += len(keys) - n_hits
            if not n_hits:
                return None
            frames = self._frames[config]
            if len(frames) > 1:  # consolidate once; later lookups filter a single frame
                frames[:] = [
                    pl.concat(frames, how="vertical_relaxed").unique(
                        subset=[KEY_COLUMN, "step"], keep="first"
                    )
                ]
            wanted = pl.DataFrame({KEY_COLUMN: [k for k, f in zip(keys, found) if f]})
            return frames[0].join(wanted, on=KEY_COLUMN, how="semi")

    def store(self, config: str, rows: pl.DataFrame, *, description: dict[str, Any] | None = None) -> Path:
        """Write one batch of rows (must hold ``cache_key``) as its own Parquet file, atomically."""
        if KEY_COLUMN not in rows.columns:
            raise ValueError(f"rows to cache must hold a {KEY_COLUMN!r} column")
        with self._lock:
            return self._store_unlocked(config, rows, description)

    def _store_unlocked(self, config: str, rows: pl.DataFrame, description: dict[str, Any] | None) -> Path:
        self._load_unlocked(config)
        directory = self._dir(config)
        if description is not None and not (directory / "config.json").exists():
            write_json_atomic(directory / "config.json", {"config_key": config, **description})
        keys = sorted(set(rows[KEY_COLUMN].to_list()))
        path = directory / f"batch-{stable_hash(*keys)[:24]}.parquet"
        with atomic_path(path) as tmp:
            rows.write_parquet(tmp)
        self._frames[config].append(rows)
        self._keys[config].update(keys)
        self.stats.batches_written += 1
        self.stats.rows_written += rows.height
        return path

    def compact(self, *, stale_tmp_seconds: float = 3600.0) -> int:
        """Merge each config's batch files into one file; returns the number of files removed.

        The merged file is renamed into place before the old files are deleted, so an interrupted
        compaction leaves duplicates (deduplicated on load), never a loss. Temporary files left by
        killed writers older than ``stale_tmp_seconds`` are removed too.
        """
        removed = 0
        if not self.root.is_dir():
            return 0
        for directory in sorted(p for p in self.root.iterdir() if p.is_dir()):
            now = time.time()
            for tmp in directory.glob(".*.tmp"):
                if now - tmp.stat().st_mtime > stale_tmp_seconds:
                    tmp.unlink(missing_ok=True)
                    removed += 1
            files = sorted(directory.glob("batch-*.parquet"))
            if len(files) < 2:
                continue
            frames, readable = [], []
            for path in files:
                try:
                    frames.append(pl.read_parquet(path))
                    readable.append(path)
                except Exception as exc:
                    logger.warning("compaction skips unreadable file %s: %s", path, exc)
            if not frames:
                continue
            merged = pl.concat(frames, how="vertical_relaxed").unique(
                subset=[KEY_COLUMN, "step"], keep="first", maintain_order=True
            )
            target = (
                directory / f"batch-{stable_hash(*sorted(set(merged[KEY_COLUMN].to_list())))[:24]}.parquet"
            )
            with atomic_path(target) as tmp:
                merged.write_parquet(tmp)
            for path in readable:
                if path != target:
                    path.unlink(missing_ok=True)
                    removed += 1
        self._frames.clear()
        self._keys.clear()
        return removed
