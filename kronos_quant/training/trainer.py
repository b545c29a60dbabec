"""The optimisation loop of one training phase (tokenizer or predictor), resumable and DDP-aware.

AdamW with linear warm-up then cosine decay, gradient accumulation and clipping, bf16
autocast on CUDA, validation every ``eval_every`` steps with early stopping, and an atomic
training state (model, optimizer, scheduler, RNG, step, best score, history) saved every
``save_every`` steps so that an interrupted run continues exactly where it stopped. Batches
are drawn from a generator seeded by (seed, phase, step), so a resumed run sees the same
batches; each process takes its slice of the global batch. Only rank 0 writes files.

Knows nothing about the Kronos architecture, data files or model cards: the caller passes a
``step_loss`` closure and a ``save_checkpoint`` callback.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kronos_quant.errors import CheckpointError, ConfigError
from kronos_quant.training.config import PhaseConfig, RuntimeConfig
from kronos_quant.training.distributed import DistContext, all_reduce_sums, barrier
from kronos_quant.training.losses import LossOutput
from kronos_quant.training.windows import WindowIndex
from kronos_quant.utils.atomic import atomic_path
from kronos_quant.utils.progress import make_progress

__all__ = ["PhaseResult", "StepEvent", "train_phase", "lr_factor", "save_state", "load_state"]

logger = logging.getLogger(__name__)

STATE_VERSION = 1
StepLoss = Callable[[nn.Module, np.ndarray, WindowIndex], LossOutput]


@dataclass(frozen=True)
class StepEvent:
    """Passed to the ``callback`` after every optimizer step (and after any state save)."""

    phase: str
    step: int
    train_loss: float
    valid_loss: float | None


@dataclass
class PhaseResult:
    """What one phase did. ``history``: one dict per validation (step, train_loss, valid_loss, lr)."""

    name: str
    steps_done: int = 0
    best_step: int | None = None
    best_valid: float | None = None
    last_train_loss: float | None = None
    stopped_early: bool = False
    seconds: float = 0.0
    resumed_from_step: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    skipped: bool = False

    def summary(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("name", "steps_done", "best_step", "best_valid", "last_train_loss",
                                               "stopped_early", "seconds", "resumed_from_step", "skipped")}


def lr_factor(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based): linear warm-up, then cosine."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def save_state(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary file beside ``path``, then rename (readers never see half a file)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, foreign pickle ...
        raise CheckpointError(f"{path}: training state unreadable ({type(exc).__name__}: {exc}); delete it to "
                              "start the phase again, or set runtime.resume: false") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise CheckpointError(f"{path}: not a kronos-quant training state (version {STATE_VERSION})")
    return state


def _optimizer(model: nn.Module, cfg: PhaseConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[Any]:
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@torch.no_grad()
def evaluate(model: nn.Module, step_loss: StepLoss, index: WindowIndex, metric: str, *, batch_size: int,
             ctx: DistContext, amp: bool) -> float:
    """Mean of ``parts[metric]`` over all scored rows of ``index``, across processes."""
    was_training = model.training
    model.eval()
    rows = np.arange(len(index))[ctx.rank::ctx.world_size]
    total, count = 0.0, 0.0
    for i in range(0, len(rows), batch_size):
        with _autocast(ctx.device, amp):
            _, parts, n = step_loss(model, rows[i:i + batch_size], index)
        total += parts[metric] * n
        count += n
    total, count = all_reduce_sums([total, count], ctx)
    model.train(was_training)
    if not count:
        raise ConfigError("no validation windows to score; widen split.valid or shorten windows.lookback")
    return total / count


def train_phase(name: str, model: nn.Module, step_loss: StepLoss, cfg: PhaseConfig, *, runtime: RuntimeConfig,
                ctx: DistContext, seed: int, phase_id: int, train_index: WindowIndex, valid_index: WindowIndex,
                metric: str, state_path: Path, config_hash: str,
                save_checkpoint: Callable[[str, dict[str, Any]], None],
                load_best: Callable[[], None], callback: Callable[[StepEvent], None] | None = None,
                quiet: bool = False) -> PhaseResult:
    """Train ``model`` (unwrapped, on ctx.device) for up to ``cfg.steps`` optimizer steps.

    ``save_checkpoint(tag, info)`` writes the model as ``best`` or ``last`` with ``info`` (step,
    losses) for its card (called on rank 0 only);
    ``load_best()`` loads the best weights back into ``model`` at the end (called on every rank).
    """
    result = PhaseResult(name)
    if len(train_index) == 0:
        raise ConfigError(f"no training windows of {train_index.length} bars for the {name}; widen split.train "
                          "or shorten windows.lookback/horizon")
    if cfg.batch_size % ctx.world_size:
        raise ConfigError(f"{name}_training.batch_size {cfg.batch_size} must be divisible by the number of "
                          f"processes ({ctx.world_size})")
    optimizer = _optimizer(model, cfg)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(
        s, warmup=cfg.warmup_steps, total=cfg.steps, min_ratio=cfg.min_lr_ratio))
    step, best, best_step, bad, seconds_before = 0, math.inf, None, 0, 0.0
    state = load_state(state_path) if runtime.resume and state_path.is_file() else None
    if state is not None:
        if state.get("config_hash") != config_hash:
            raise ConfigError(f"{state_path} was written by a different config; use a new output_dir, delete "
                              "the state directory, or set runtime.resume: false")
        result.history = list(state["history"])
        result.seconds = float(state["seconds"])
        if state["done"]:
            for key in ("steps_done", "best_step", "best_valid", "last_train_loss", "stopped_early"):
                setattr(result, key, state[key])
            load_best()
            logger.info("%s: already trained (%d steps), reusing %s", name, result.steps_done, state_path.parent)
            return result
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"], ctx.device)
        step, bad, seconds_before = int(state["step"]), int(state["bad_evals"]), float(state["seconds"])
        best = math.inf if state["best_valid"] is None else float(state["best_valid"])
        best_step = state["best_step"]
        result.resumed_from_step = step
        logger.info("%s: resuming from step %d (%s)", name, step, state_path)

    train_model: nn.Module = model
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda"
                                              else None)
    t0 = time.perf_counter()
    train_loss = math.nan
    stop = False

    def snapshot(done: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": STATE_VERSION, "phase": name, "step": step, "done": done, "config_hash": config_hash,
            "best_valid": None if best == math.inf else best, "best_step": best_step, "bad_evals": bad,
            "history": result.history, "seconds": seconds_before + time.perf_counter() - t0,
            "steps_done": step, "last_train_loss": train_loss, "stopped_early": stop}
        if not done:
            out.update(model=model.state_dict(), optimizer=optimizer.state_dict(), scheduler=schedule.state_dict(),
                       rng=_rng_state(ctx.device))
        return out

    train_model.train()
    micro = cfg.batch_size // ctx.world_size
    with make_progress(cfg.steps, f"training {name}", quiet=quiet, unit="step", initial=step) as bar:
        while step < cfg.steps and not stop:
            rng = np.random.default_rng([seed, phase_id, step])
            total = 0.0
            for k in range(cfg.grad_accum):
                rows = rng.choice(len(train_index), size=cfg.batch_size, replace=len(train_index) < cfg.batch_size)
                shard = rows[ctx.rank::ctx.world_size][:micro]
                sync = k == cfg.grad_accum - 1 or not ctx.distributed
                with contextlib.nullcontext() if sync else train_model.no_sync():  # type: ignore[operator]
                    with _autocast(ctx.device, runtime.amp):
                        loss, _, _ = step_loss(train_model, shard, train_index)
                    (loss / cfg.grad_accum).backward()
                total += float(loss.detach()) / cfg.grad_accum
            if not math.isfinite(total):
                raise FloatingPointError(f"{name} step {step + 1}: the training loss is {total}; lower "
                                         f"{name}_training.lr or raise warmup_steps")
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            train_loss = all_reduce_sums([total], ctx)[0] / ctx.world_size
            bar.update(1)
            valid = None
            if step % cfg.eval_every == 0 or step == cfg.steps:
                valid = evaluate(model, step_loss, valid_index, metric, batch_size=micro, ctx=ctx, amp=runtime.amp)
                if not math.isfinite(valid):
                    raise FloatingPointError(f"{name} step {step}: the validation {metric} is {valid}")
                improved = valid < best - cfg.min_delta
                if improved:
                    best, best_step, bad = valid, step, 0
                    if ctx.is_main:
                        save_checkpoint("best", {"step": step, "train_loss": train_loss, "valid_loss": valid})
                else:
                    bad += 1
                    stop = cfg.patience > 0 and bad >= cfg.patience
                result.history.append({"step": step, "train_loss": train_loss, "valid_loss": valid,
                                       "lr": schedule.get_last_lr()[0], "improved": improved,
                                       "seconds": round(seconds_before + time.perf_counter() - t0, 2)})
                logger.info("%s step %d: train %.4f, valid %s %.4f%s", name, step, train_loss, metric, valid,
                            " (best)" if improved else f" (no improvement {bad}/{cfg.patience})")
            elif step % runtime.log_every == 0:
                logger.info("%s step %d: train %.4f, lr %.2e", name, step, train_loss, schedule.get_last_lr()[0])
            if step % runtime.save_every == 0 or stop or step == cfg.steps:
                if ctx.is_main:
                    save_checkpoint("last", {"step": step, "train_loss": train_loss})
                    save_state(state_path, snapshot(done=False))
                barrier(ctx)
            if callback is not None:
                callback(StepEvent(name, step, train_loss, valid))
    if stop:
        logger.info("%s: early stop at step %d (best step %s)", name, step, best_step)
    result.steps_done, result.best_step, result.last_train_loss, result.stopped_early = step, best_step, train_loss, stop
    result.best_valid = None if best == math.inf else best
    result.seconds = seconds_before + time.perf_counter() - t0
    if ctx.is_main:
        save_state(state_path, snapshot(done=True))
    barrier(ctx)
    load_best()
    return result
