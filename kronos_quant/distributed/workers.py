"""The actors of the Ray executor and the pool that runs shards on them.

Owns: ``ShardWorker`` (one actor: the panel arrays, the run's ``RollingSpec``, one forecaster
built once and checked against the driver's identity, and ``forecast_shard``, which computes a
shard with ``engine.forecast_items`` in the local executor's batches), ``WorkerPool`` (spawning
named actors, keeping up to ``depth`` shards in flight on each, replacing a dead actor while a
restart budget lasts) and turning worker errors into one line.
Knows nothing about the cache, retries or the table; the driver (``ray_backend``) decides those.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from kronos_quant.data.arrays import PanelArrays
from kronos_quant.distributed.ray_setup import import_ray
from kronos_quant.distributed.shards import ShardLedger
from kronos_quant.engine import Batch, RollingSpec, WorkItem, forecast_items
from kronos_quant.errors import ConfigError
from kronos_quant.schema import Forecaster

__all__ = ["ShardWorker", "WorkerPool", "Slot", "error_text", "init_failed"]

logger = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ShardWorker:
    """The body of one Ray actor: the panel arrays, the run's spec and one forecaster (built once).

    make_forecaster: a zero-argument callable; the forecaster it builds must have ``identity``
    (the driver's, which keyed the cache), else the actor refuses to start (ConfigError).
    """

    def __init__(self, make_forecaster: Callable[[], Forecaster], data: PanelArrays, spec: RollingSpec,
                 identity: dict[str, Any]) -> None:
        self.data = data
        self.spec = spec
        self.forecaster = make_forecaster()
        if self.forecaster.identity != identity:
            raise ConfigError(f"the forecaster built on a Ray worker ({self.forecaster.identity}) differs from the "
                              f"driver's ({identity}); the worker factory must build the same model")
        self.n_shards = 0

    def where(self) -> dict[str, Any]:
        """Host, process id and visible GPUs of this actor (for logs and tests)."""
        return {"host": socket.gethostname(), "pid": os.getpid(),
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}

    def forecast_shard(self, items: Sequence[WorkItem]) -> pl.DataFrame:
        """Rows (len(items) * horizon, Int64 times) in the order of ``items``, computed in batches
        of ``spec.batch_series`` exactly as the local executor does."""
        self.n_shards += 1
        return forecast_items(self.data, items, self.forecaster, self.spec)


@functools.cache
def _remote_worker_class() -> Any:
    return import_ray().remote(ShardWorker)


def error_text(exc: BaseException) -> str:
    """One line naming an error raised on a worker (the original exception where Ray keeps it)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}".splitlines()[0]
    lines = [ln.strip() for ln in _ANSI.sub("", str(exc)).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    # a traceback (e.g. from a failed constructor) ends with the line naming the exception
    return lines[-1] if len(lines) > 1 and ("Traceback" in str(exc) or init_failed(exc)) else lines[0]


def init_failed(exc: BaseException) -> bool:
    """Whether an actor died in its constructor (a replacement would die the same way)."""
    return bool(getattr(exc, "_actor_init_failed", False)) or "error raised in its creation task" in str(exc)


@dataclass
class Slot:
    """Worker ``index`` of the pool; ``generation`` counts its replacements; ``inflight`` holds its
    (object ref, shard) pairs in submission order, which is the order the actor runs them."""

    index: int
    generation: int
    actor: Any
    inflight: list[tuple[Any, Batch]] = field(default_factory=list)
    alive: bool = True

    @property
    def key(self) -> tuple[int, int]:
        return (self.index, self.generation)


class WorkerPool:
    """The actors of one run, their in-flight shards, and their replacement after a death."""

    def __init__(self, ray: Any, make_forecaster: Callable[[], Forecaster], data_ref: Any, spec: RollingSpec,
                 identity: dict[str, Any], *, n_workers: int, resources: dict[str, float], depth: int,
                 max_restarts: int) -> None:
        self.ray, self.make_forecaster, self.data_ref = ray, make_forecaster, data_ref
        self.spec, self.identity = spec, identity
        self.resources, self.depth, self.restarts_left = resources, depth, max_restarts
        self.run_id = uuid.uuid4().hex[:8]
        self.n_restarts = 0
        self.last_death = "unknown"
        self.slots = [Slot(i, 0, self._spawn(i, 0)) for i in range(n_workers)]
        self.owner: dict[Any, Slot] = {}

    def _spawn(self, index: int, generation: int) -> Any:
        name = f"kq-forecast-{self.run_id}-w{index}.{generation}"
        cls = _remote_worker_class().options(name=name, max_restarts=0, **self.resources)
        return cls.remote(self.make_forecaster, self.data_ref, self.spec, self.identity)

    @property
    def live(self) -> list[Slot]:
        return [s for s in self.slots if s.alive]

    def refs(self) -> list[Any]:
        return [ref for s in self.slots for ref, _ in s.inflight]

    def fill(self, ledger: ShardLedger) -> None:
        """Give each live actor shards until it has ``depth`` in flight or nothing is left."""
        keys = [s.key for s in self.live]
        progress = True
        while progress and ledger.pending:
            progress = False
            for slot in self.live:
                if len(slot.inflight) >= self.depth:
                    continue
                shard = ledger.next_for(slot.key, keys)
                if shard is None:
                    continue
                ref = slot.actor.forecast_shard.remote(shard.items)
                slot.inflight.append((ref, shard))
                self.owner[ref] = slot
                progress = True

    def release(self, ref: Any) -> tuple[Slot, Batch]:
        slot = self.owner.pop(ref)
        n = next(i for i, (r, _) in enumerate(slot.inflight) if r == ref)
        return slot, slot.inflight.pop(n)[1]

    def replace(self, slot: Slot, reason: str, *, permanent: bool) -> None:
        """Kill ``slot``'s actor; start a replacement while the restart budget lasts, unless the
        failure is ``permanent`` (its forecaster cannot be built: a replacement would die too)."""
        self.last_death = reason
        try:
            self.ray.kill(slot.actor, no_restart=True)
        except Exception as exc:  # already gone
            logger.debug("ray.kill of a dead worker: %s", exc)
        if permanent or self.restarts_left <= 0:
            slot.alive = False
            logger.warning("ray worker %d died (%s); not replaced (%s)", slot.index, reason,
                           "its forecaster cannot be built" if permanent else "restart budget spent")
            return
        self.restarts_left -= 1
        self.n_restarts += 1
        slot.generation += 1
        slot.actor = self._spawn(slot.index, slot.generation)
        logger.warning("ray worker %d died (%s); started a replacement", slot.index, reason)

    def shutdown(self) -> None:
        for slot in self.slots:
            try:
                self.ray.kill(slot.actor, no_restart=True)
            except Exception as exc:
                logger.debug("ray.kill at shutdown: %s", exc)
        self.owner.clear()
