"""The Ray executor: the windows of a rolling run, in shards, on a pool of Ray actors.

Owns: ``RayExecutor.map_batches`` -- it ships the panel arrays to the object store once, cuts the
windows ``engine.run_rolling`` hands it into shards (``engine.make_batches``, so a shard holds
the local executor's batches), runs them on actors (``workers``), retries failed shards on other
or replacement actors (bookkeeping in ``shards.ShardLedger``), hands each finished shard to the
engine on arrival (which stores it into the forecast cache, so a killed run resumes where it
stopped) and names the shards that failed for good (``DistributedForecastError``).

Planning, windows, seeds, cache keys and the table layout belong to ``kronos_quant.engine``; this
module only decides where shards run, so the table equals the local executor's for the same
inputs. Ray is imported lazily: importing this module never needs it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kronos_quant.data.arrays import PanelArrays
from kronos_quant.distributed.ray_setup import RayOptions, ensure_ray, worker_resources
from kronos_quant.distributed.shards import DistributedForecastError, ShardLedger
from kronos_quant.distributed.workers import Slot, WorkerPool, error_text, init_failed
from kronos_quant.engine import Batch, Deliver, RollingSpec, RollingWork, make_batches
from kronos_quant.schema import Forecaster

__all__ = ["RayExecutor"]

logger = logging.getLogger(__name__)


def _same(forecaster: Forecaster) -> Forecaster:
    return forecaster


@dataclass(frozen=True)
class RayExecutor:
    """Run the forecasts of ``engine.run_rolling`` on Ray actors (``options``: where and how many).

    factory: a picklable zero-argument callable that builds the forecaster in each actor (e.g.
    ``distributed.forecaster_factory(cfg.model)``, which loads Kronos on the actor's own GPU);
    default: the forecaster given to ``run_rolling`` is pickled to each actor (cheap for
    baselines and for ``forecasters.LazyKronosForecaster``, which loads on first use). Either
    way an actor's forecaster must have the driver's identity (it keyed the cache).
    A failed shard is retried up to ``options.max_retries`` times; shards that still fail are
    named in a ``DistributedForecastError`` raised after every other shard has finished.
    """

    options: RayOptions = field(default_factory=RayOptions)
    factory: Callable[[], Forecaster] | None = None

    def map_batches(self, work: RollingWork, deliver: Deliver) -> None:
        spec = work.spec
        shards = make_batches(work.windows, work.keys, size=self.options.shard_size or spec.batch_series)
        factory = self.factory or functools.partial(_same, work.forecaster)
        _run_shards(shards, factory, work.forecaster.identity, work.data, spec, self.options, deliver,
                    cached=work.cached)


def _run_shards(shards: list[Batch], make_forecaster: Callable[[], Forecaster], identity: dict[str, Any],
                data: PanelArrays, spec: RollingSpec, options: RayOptions, deliver: Deliver, *, cached: bool) -> None:
    """Run ``shards`` on a pool of actors, handing each finished one to ``deliver`` (on this thread)."""
    ray = ensure_ray(options.address, runtime_env=options.runtime_env)
    from ray.exceptions import RayActorError

    n_workers, resources = worker_resources(ray, options, min(options.num_workers, len(shards)))
    max_restarts = options.max_worker_restarts if options.max_worker_restarts is not None else 2 * n_workers
    data_ref = ray.put(data)  # once; every actor maps the same arrays from the object store
    ledger = ShardLedger(shards, max_retries=options.max_retries)
    pool = WorkerPool(ray, make_forecaster, data_ref, spec, identity, n_workers=n_workers, resources=resources,
                      depth=options.max_in_flight_per_worker, max_restarts=max_restarts)
    logger.info("ray: %d shards on %d workers (%s each)", len(shards), n_workers,
                ", ".join(f"{k}={v:g}" for k, v in resources.items()))
    try:
        while ledger.pending or pool.owner:
            pool.fill(ledger)
            if not pool.owner:
                ledger.abandon_pending(f"no Ray worker left to run it (the last one died of: {pool.last_death})")
                break
            [ref], _ = ray.wait(pool.refs(), num_returns=1)
            try:
                rows = ray.get(ref)
            except RayActorError as exc:
                _handle_death(ray, pool, pool.owner[ref], ledger, exc, deliver)
                continue
            except Exception as exc:  # the forecaster raised: charge the shard, keep the actor
                slot, shard = pool.release(ref)
                retry = ledger.charge(shard, slot.key, error_text(exc))
                logger.warning("shard %d failed on worker %d (%s)%s", shard.index, slot.index, error_text(exc),
                               "; retrying" if retry else "; giving up")
                continue
            deliver(pool.release(ref)[1], rows)
    finally:
        pool.shutdown()
        del data_ref
    if pool.n_restarts:
        logger.info("ray: %d worker(s) replaced during the run", pool.n_restarts)
    if ledger.failures:
        raise DistributedForecastError(ledger.failures, time_zone=data.time_zone, n_shards=len(shards),
                                       cached=cached)


def _handle_death(ray: Any, pool: WorkerPool, slot: Slot, ledger: ShardLedger, exc: BaseException,
                  deliver: Deliver) -> None:
    """An actor died: keep the shards it finished, charge the one it was running (the first
    unfinished: an actor runs its shards in order), requeue the rest uncharged, replace it."""
    reason = error_text(exc)
    entries, charged = list(slot.inflight), False
    for ref, _ in entries:
        pool.release(ref)
    for ref, shard in entries:
        if ray.wait([ref], timeout=0)[0]:
            try:
                rows = ray.get(ref)
            except Exception as err:
                if not _is_actor_error(err):
                    ledger.charge(shard, slot.key, error_text(err))  # it failed by itself before the death
                    continue
            else:
                deliver(shard, rows)
                continue
        if not charged:
            charged = True
            retry = ledger.charge(shard, slot.key, f"worker died: {reason}")
            logger.warning("shard %d lost with worker %d%s", shard.index, slot.index,
                           "; retrying" if retry else "; giving up")
        else:
            ledger.requeue(shard)
    pool.replace(slot, reason, permanent=init_failed(exc))


def _is_actor_error(err: BaseException) -> bool:
    from ray.exceptions import RayActorError

    return isinstance(err, RayActorError)
