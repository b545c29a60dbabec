"""Progress: a bar on a terminal, a log line every minute or so elsewhere.

A bar shows counts and an ETA on a TTY. Under cron, CI or a redirect (stderr not a TTY) an
INFO log line with counts, elapsed time and ETA is written every ``KRONOS_QUANT_PROGRESS_SECONDS``
(default 60) seconds instead (``LogProgress``): a heartbeat thread writes it even while nothing
completes (one long batch of forecasts), with the last known counts. With ``quiet=True`` or
``KRONOS_QUANT_QUIET=1``, neither. Log records go through ``ProgressLogHandler`` so a line logged while a bar is drawn lands
above the bar, never inside it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_enabled", "make_progress", "LogProgress", "ProgressLogHandler"]

logger = logging.getLogger("kronos_quant.progress")

_QUIET = {"value": False}


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar of this process."""
    _QUIET["value"] = bool(quiet)


def _silenced(quiet: bool | None) -> bool:
    return bool(quiet or _QUIET["value"] or os.environ.get("KRONOS_QUANT_QUIET") == "1")


def progress_enabled(quiet: bool | None = None) -> bool:
    """Whether a progress bar is drawn (not silenced, and stderr is a terminal)."""
    if _silenced(quiet):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def make_progress(total: int, desc: str, *, quiet: bool | None = None, unit: str = "it",
                  **kwargs: Any) -> tqdm | LogProgress:
    """A tqdm bar on a terminal, else a ``LogProgress`` (neither when silenced). Use as a context
    manager and call ``update``."""
    if not _silenced(quiet) and not progress_enabled(quiet):
        return LogProgress(total, desc, unit=unit, initial=int(kwargs.get("initial", 0)))
    return tqdm(total=total, desc=desc, unit=unit, disable=not progress_enabled(quiet), leave=False, **kwargs)


def _env_seconds() -> float:
    try:
        return float(os.environ.get("KRONOS_QUANT_PROGRESS_SECONDS", 60))
    except ValueError:
        return 60.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class LogProgress:
    """Progress for logs (no terminal): an INFO line at most every ``interval`` seconds, e.g.
    ``forecasts: 1200/5000 series (24%), 3m10s elapsed, ETA 10m02s``, and a last line when done
    (only if a line was written before). interval: default ``KRONOS_QUANT_PROGRESS_SECONDS`` or 60.

    Lines are written by ``update`` when an interval has passed and, inside a ``with`` block, by a
    heartbeat thread whenever an interval passes without one, so a long step that completes
    nothing (one batch of forecasts, a model load) still logs a line every ``interval`` seconds
    with the last known counts (``no ETA yet`` before anything completed). interval <= 0: a line
    at every update and no heartbeat.
    """

    def __init__(self, total: int, desc: str, *, unit: str = "it", initial: int = 0, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit, self.n, self.initial = int(total), desc, unit, int(initial), int(initial)
        self.interval = _env_seconds() if interval is None else float(interval)
        self._clock = clock
        self._start = self._last = clock()
        self._lines = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def update(self, n: int = 1) -> None:
        self.n += int(n)
        if n:
            self._line_if_due()

    def _line_if_due(self) -> None:
        """Log the progress line when ``interval`` has passed since the last one (or the start)."""
        with self._lock:
            now = self._clock()
            if now - self._last < self.interval or self.n >= self.total:
                return
            self._last = now
            self._lines += 1
            elapsed, done = now - self._start, self.n - self.initial
            eta = f", ETA {_duration(elapsed / done * (self.total - self.n))}" if done > 0 else ", no ETA yet"
            logger.info("%s: %d/%d %s (%d%%), %s elapsed%s", self.desc, self.n, self.total, self.unit,
                        100 * self.n // max(self.total, 1), _duration(elapsed), eta)

    def _beat(self) -> None:
        """Heartbeat thread: wake when the next line is due, log it unless ``update`` did."""
        while not self._stop.wait(max(self._last + self.interval - self._clock(), 0.01)):
            self._line_if_due()

    def close(self, *, failed: bool = False) -> None:
        """Stop the heartbeat; log the last line (``done``, or ``stopped`` when ``failed``) if a progress
        line was written."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        if self._lines:
            self._lines = 0
            logger.info("%s: %d/%d %s %s in %s", self.desc, self.n, self.total, self.unit,
                        "stopped" if failed else "done", _duration(self._clock() - self._start))

    def __enter__(self) -> LogProgress:
        if self.interval > 0 and self._heartbeat is None and not self._stop.is_set():
            self._heartbeat = threading.Thread(target=self._beat, name="kq-progress", daemon=True)
            self._heartbeat.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(failed=exc_type is not None)


class ProgressLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes through ``tqdm.write``: active bars on the stream are cleared,
    the record printed on its own line, and the bars redrawn below it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except Exception:  # logging must never raise: report it the standard way
            self.handleError(record)
