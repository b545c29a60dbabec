"""The bookkeeping of a Ray run's shards: retries, failures and the error that names them.

Owns: counting each shard's attempts and the workers it failed on (``ShardLedger``) and naming
the (instrument, as-of) forecasts of shards that failed for good (``DistributedForecastError``).
A shard is an ``engine.Batch`` (an index, its windows and their cache keys), cut by
``engine.make_batches`` exactly as the local executor cuts its batches.

Knows nothing about Ray, models or the cache; the Ray executor decides where shards run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from kronos_quant.engine import Batch, WorkItem
from kronos_quant.errors import KronosQuantError

__all__ = ["ShardFailure", "ShardLedger", "DistributedForecastError", "describe_items"]


def _format_asof(asof_ns: int, time_zone: str | None) -> str:
    ts = pd.Timestamp(asof_ns, unit="ns", tz="UTC")
    ts = ts.tz_convert(time_zone) if time_zone is not None else ts.tz_localize(None)
    return ts.isoformat()


def describe_items(items: Sequence[WorkItem], *, time_zone: str | None = None, limit: int = 6) -> str:
    """``"SYN001 @ 2015-03-02T00:00:00, ... (+7 more)"``: the (instrument, as-of) pairs of ``items``."""
    names = [f"{it.instrument} @ {_format_asof(it.asof_ns, time_zone)}" for it in items[:limit]]
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(names) + more


@dataclass(frozen=True)
class ShardFailure:
    """A shard that failed ``attempts`` times; ``error`` is the last error (one line)."""

    shard: Batch
    attempts: int
    error: str


class DistributedForecastError(KronosQuantError, RuntimeError):
    """Some shards of a distributed rolling forecast failed after their retries.

    ``failures`` lists them; every other shard finished (and is in the forecast cache when one
    was given, so a rerun computes only the failed forecasts).
    """

    def __init__(self, failures: Sequence[ShardFailure], *, time_zone: str | None = None,
                 n_shards: int | None = None, cached: bool = False) -> None:
        self.failures = list(failures)
        n_forecasts = sum(f.shard.n_forecasts for f in self.failures)
        lines = [
            f"{len(self.failures)} shard(s){f' of {n_shards}' if n_shards else ''} "
            f"({n_forecasts} forecasts) failed:"
        ]
        for f in self.failures[:10]:
            what = f"failed {f.attempts} time(s); last error" if f.attempts else "did not run"
            lines.append(
                f"  shard {f.shard.index} ({f.shard.n_forecasts} forecasts: "
                f"{describe_items(f.shard.items, time_zone=time_zone)}) {what}: {f.error}"
            )
        if len(self.failures) > 10:
            lines.append(f"  ... and {len(self.failures) - 10} more shard(s)")
        lines.append(
            "the other shards finished and are in the forecast cache; fix the cause and rerun to compute only "
            "the failed forecasts" if cached else
            "the other shards finished; set forecast.cache_dir so that a rerun recomputes only the failed ones"
        )
        super().__init__("\n".join(lines))


@dataclass
class ShardLedger:
    """Pending shards, attempts per shard, and the workers each shard failed on.

    ``max_retries``: a shard is attempted at most ``1 + max_retries`` times. A retried shard goes
    to the front of the queue and, while another worker can take it, avoids the workers it
    failed on.
    """

    shards: Sequence[Batch]
    max_retries: int
    pending: deque[Batch] = field(init=False)
    attempts: dict[int, int] = field(init=False, default_factory=dict)
    failed_on: dict[int, set[Hashable]] = field(init=False, default_factory=dict)
    failures: list[ShardFailure] = field(init=False, default_factory=list)
    last_error: dict[int, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        self.pending = deque(self.shards)

    def next_for(self, worker: Hashable, live_workers: Sequence[Hashable]) -> Batch | None:
        """The next shard for ``worker``: the first pending one that did not fail there; a shard
        that failed on every live worker goes to any worker."""
        for n, shard in enumerate(self.pending):
            avoid = self.failed_on.get(shard.index, set())
            if worker not in avoid or all(w in avoid for w in live_workers):
                del self.pending[n]
                return shard
        return None

    def requeue(self, shard: Batch) -> None:
        """Put back a shard that did not run (its worker died while it waited); no attempt is charged."""
        self.pending.appendleft(shard)

    def charge(self, shard: Batch, worker: Hashable, error: str) -> bool:
        """Count a failed attempt of ``shard`` on ``worker``; requeue it (True) or record it as
        failed for good once its retries are spent (False)."""
        n = self.attempts.get(shard.index, 0) + 1
        self.attempts[shard.index] = n
        self.failed_on.setdefault(shard.index, set()).add(worker)
        self.last_error[shard.index] = error
        if n > self.max_retries:
            self.failures.append(ShardFailure(shard, n, error))
            return False
        self.pending.appendleft(shard)
        return True

    def abandon_pending(self, error: str) -> None:
        """Record every pending shard as failed (no worker is left to run it); a shard that failed
        before keeps its last error in the message."""
        while self.pending:
            shard = self.pending.popleft()
            last = self.last_error.get(shard.index)
            self.failures.append(ShardFailure(shard, self.attempts.get(shard.index, 0),
                                              error if last is None else f"{last} (then no worker was left to retry it)"))
