"""``run_finetune``: one command that trains a Kronos tokenizer, then a predictor, on a panel.

Steps: validate the config; join the torchrun process group if launched by torchrun; load the
panel (training + validation periods only -- held-out periods are never read); cut windows;
build or load the models; train the tokenizer, then the predictor on the tokens of the best
tokenizer; write ``best/`` and ``last/`` pairs in the Hub layout with model cards; optionally
copy the best pair to ``export_dir``. Run directory layout::

    output_dir/best/{tokenizer,predictor}/{config.json,model.safetensors}  + MODEL_CARD.md, card.json
    output_dir/last/...                                                   (same layout)
    output_dir/state/{tokenizer,predictor}.pt                             (resumable training states)

Knows nothing about the CLI, forecasting engines or backtests.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from safetensors.torch import load_file

from kronos_quant._version import __version__
from kronos_quant.errors import ConfigError, DataError
from kronos_quant.model import Kronos, KronosTokenizer
from kronos_quant.model.hub import WEIGHTS_NAME
from kronos_quant.training.card import checkpoint_stats, write_card
from kronos_quant.training.config import FinetuneConfig, PretrainedInit, load_finetune_config, period_bounds
from kronos_quant.training.distributed import DistContext, barrier, setup_distributed, teardown_distributed
from kronos_quant.training.losses import LossOutput, predictor_loss, tokenizer_loss
from kronos_quant.training.trainer import PhaseResult, StepEvent, train_phase
from kronos_quant.training.windows import (
    SeriesSet,
    WindowIndex,
    assemble_batch,
    series_from_panel,
    training_windows,
    validation_windows,
)
from kronos_quant.utils.hashing import hash_json

__all__ = ["FinetuneResult", "run_finetune", "format_commands"]

logger = logging.getLogger(__name__)

PHASES = ("tokenizer", "predictor")
METRICS = {"tokenizer": "recon", "predictor": "ce"}


@dataclass
class FinetuneResult:
    """Where the run wrote its checkpoints and what each phase did."""

    config: FinetuneConfig
    output_dir: Path
    best_dir: Path  # KronosPredictor.from_pretrained(best_dir) loads the pair
    last_dir: Path
    export_dir: Path | None
    tokenizer: PhaseResult
    predictor: PhaseResult
    card: dict[str, Any]

    @property
    def seconds(self) -> float:
        return self.tokenizer.seconds + self.predictor.seconds


def format_commands(source: Any, overrides: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """The CLI and ``python -m`` commands that reproduce a run (None-like text for in-memory configs)."""
    if not isinstance(source, (str, os.PathLike)):
        return ["# config passed to run_finetune() as an object; its full content is under 'config' below"]
    sets: list[str] = []
    if isinstance(overrides, Mapping):
        sets = [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
    elif overrides:
        sets = list(overrides)
    extra = "".join(f" --set '{s}'" for s in sets)
    return [f"kronos-quant finetune {source}{extra}", f"python -m kronos_quant.training {source}{extra}"]


def _load_panel(cfg: FinetuneConfig) -> pl.DataFrame:
    path = Path(cfg.data.path).expanduser()
    if not path.exists():
        raise DataError(f"data.path: {cfg.data.path} not found (relative paths resolve against the working "
                        f"directory {Path.cwd()})")
    from kronos_quant.data.panel import load_panel

    kwargs: dict[str, Any] = dict(columns=cfg.data.columns, instruments=cfg.data.instruments,
                                  start=cfg.split.train.start, end=cfg.split.valid.end)
    try:
        return load_panel(path, policy="drop", **kwargs)
    except ImportError:  # the validation module is optional; windows drop non-finite rows themselves
        return load_panel(path, validate=False, **kwargs)


def _config_hash(cfg: FinetuneConfig, fingerprint: str) -> str:
    body = cfg.model_dump(mode="json", exclude={"runtime", "export_dir", "name"})
    return hash_json({"config": body, "data": fingerprint})[:16]


def _n_params(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _environment(ctx: DistContext) -> dict[str, Any]:
    if ctx.device.type == "cuda":
        hardware = f"{ctx.world_size} x {torch.cuda.get_device_name(ctx.device)}"
    else:
        hardware = f"{os.cpu_count()}-core CPU ({platform.machine()}), {torch.get_num_threads()} torch threads"
    return {"hardware": hardware, "device": str(ctx.device), "world_size": ctx.world_size,
            "torch": torch.__version__, "kronos_quant": __version__, "python": platform.python_version()}


class _Run:
    """State shared by the phases of one run (config, data, models, paths)."""

    def __init__(self, cfg: FinetuneConfig, ctx: DistContext, commands: list[str], quiet: bool,
                 callback: Callable[[StepEvent], None] | None) -> None:
        self.cfg, self.ctx, self.commands, self.quiet, self.callback = cfg, ctx, commands, quiet, callback
        self.out = Path(cfg.output_dir)
        self.phases: dict[str, PhaseResult] = {}
        panel = _load_panel(cfg)
        from kronos_quant.data.panel import data_fingerprint

        self.fingerprint = data_fingerprint(panel)
        self.series: SeriesSet = series_from_panel(panel)
        w, split = cfg.windows, cfg.split
        train_lo, train_hi = period_bounds(split.train)
        valid_lo, valid_hi = period_bounds(split.valid)
        assert train_hi is not None and valid_lo is not None and valid_hi is not None
        self.train_index = training_windows(self.series, length=w.lookback + w.horizon, start=train_lo, end=train_hi)
        self.valid_index = validation_windows(
            self.series, lookback=w.lookback, horizon=w.horizon, start=valid_lo, end=valid_hi, train_end=train_hi,
            embargo_bars=cfg.embargo_bars, stride=w.valid_stride or w.horizon, max_windows=w.max_valid_windows)
        if len(self.train_index) == 0 or len(self.valid_index) == 0:
            which = "training" if len(self.train_index) == 0 else "validation"
            raise DataError(f"{cfg.data.path}: no {which} windows of {w.lookback}+{w.horizon} bars in the "
                            f"{which} period; widen split.{'train' if which == 'training' else 'valid'} or shorten "
                            "windows.lookback")
        times = np.concatenate(self.series.times)
        self.data_info = {
            "path": cfg.data.path, "fingerprint": self.fingerprint, "n_instruments": len(self.series.names),
            "n_rows": self.series.n_rows, "first": str(times.min())[:19], "last": str(times.max())[:19],
            "lookback": w.lookback, "horizon": w.horizon, "clip": w.clip,
            "n_train_windows": len(self.train_index), "n_valid_windows": len(self.valid_index)}
        self.config_hash = _config_hash(cfg, self.fingerprint)
        logger.info("data: %d instruments, %d rows; %d training and %d validation windows", len(self.series.names),
                    self.series.n_rows, len(self.train_index), len(self.valid_index))

    # -- helpers ----------------------------------------------------------------------------
    def batch(self, rows: np.ndarray, index: WindowIndex) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        x, stamps, scored = assemble_batch(self.series, index, rows, lookback=self.cfg.windows.lookback,
                                           clip=self.cfg.windows.clip)
        dev = self.ctx.device
        mask = torch.from_numpy(scored).to(dev) if index.n_scored else None
        return torch.from_numpy(x).to(dev), torch.from_numpy(stamps).to(dev), mask

    def card(self, *, checkpoint: dict[str, Any] | None = None, models: dict[str, torch.nn.Module],
             tag_dir: Path) -> dict[str, Any]:
        cfg = self.cfg
        init = "scratch" if cfg.init == "scratch" else cfg.init.model_dump()
        model_info = {}
        for key, model in models.items():
            d = tag_dir / key
            if (d / WEIGHTS_NAME).is_file():
                model_info[key] = {"n_parameters": _n_params(model), "config": model.config, **checkpoint_stats(d)}
        training: dict[str, Any] = {k: {**r.summary(), "metric": METRICS[k], "history": r.history}
                                    for k, r in self.phases.items()}
        if len(self.phases) == 2:
            training["total_seconds"] = sum(r.seconds for r in self.phases.values())
        return {
            "name": cfg.name, "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "summary": (f"Kronos tokenizer + predictor {'trained from scratch' if cfg.init == 'scratch' else 'fine-tuned'}"
                        f" on {self.data_info['n_instruments']} instruments of {cfg.data.path}."),
            "commands": self.commands, "init": init, "max_context": cfg.max_context, "seed": cfg.seed,
            "data": self.data_info, "periods": {**cfg.split.model_dump(mode="json"), "embargo_bars": cfg.embargo_bars},
            "models": model_info, "training": training, "checkpoint": checkpoint,
            "environment": _environment(self.ctx), "config": cfg.model_dump(mode="json"),
            "config_hash": self.config_hash}

    def save(self, tag: str, key: str, model: torch.nn.Module, models: dict[str, torch.nn.Module],
             checkpoint: dict[str, Any] | None = None) -> None:
        model.save_pretrained(self.out / tag / key)  # type: ignore[operator]
        write_card(self.out / tag, self.card(checkpoint=checkpoint, models=models, tag_dir=self.out / tag))

    def run_phase(self, key: str, model: torch.nn.Module, step_loss: Callable[..., LossOutput],
                  models: dict[str, torch.nn.Module]) -> PhaseResult:
        cfg = getattr(self.cfg, f"{key}_training")
        best_file = self.out / "best" / key / WEIGHTS_NAME
        if cfg.steps == 0:
            result = PhaseResult(key, skipped=True)
            if self.ctx.is_main:
                for tag in ("best", "last"):
                    self.save(tag, key, model, models, {"phase": key, "step": 0})
            barrier(self.ctx)
            return result

        def load_best() -> None:
            model.load_state_dict(load_file(str(best_file), device=str(self.ctx.device)))

        return train_phase(
            key, model, step_loss, cfg, runtime=self.cfg.runtime, ctx=self.ctx, seed=self.cfg.seed,
            phase_id=PHASES.index(key), train_index=self.train_index, valid_index=self.valid_index,
            metric=METRICS[key], state_path=self.out / "state" / f"{key}.pt", config_hash=self.config_hash,
            save_checkpoint=lambda tag, info: self.save(tag, key, model, models, {"phase": key, **info}),
            load_best=load_best, callback=self.callback, quiet=self.quiet)


def _build(cls: type, key: str, cfg: FinetuneConfig, seed: int) -> Any:
    if isinstance(cfg.init, PretrainedInit):
        name = getattr(cfg.init, key)
        return cls.from_pretrained(name, revision=getattr(cfg.init, f"{key}_revision"))
    assert cfg.architecture is not None
    torch.manual_seed(seed)
    return cls.from_config(getattr(cfg.architecture, key).kwargs(), source=f"architecture.{key}")


def _train(run: _Run) -> FinetuneResult:
    cfg, ctx = run.cfg, run.ctx
    tokenizer: KronosTokenizer = _build(KronosTokenizer, "tokenizer", cfg, cfg.seed).to(ctx.device)
    models: dict[str, torch.nn.Module] = {"tokenizer": tokenizer}

    def tok_loss(model: torch.nn.Module, rows: np.ndarray, index: WindowIndex) -> LossOutput:
        x, _, mask = run.batch(rows, index)
        return tokenizer_loss(model, x, mask)

    tokenizer.train()
    run.phases["tokenizer"] = run.run_phase("tokenizer", tokenizer, tok_loss, models)
    tokenizer.eval().requires_grad_(False)
    if ctx.is_main and not run.phases["tokenizer"].skipped:
        # last/ pairs the last predictor with the tokenizer it was trained on: the best one
        run.save("last", "tokenizer", tokenizer, models, {"phase": "tokenizer", "tag": "best"})
    barrier(ctx)

    predictor: Kronos = _build(Kronos, "predictor", cfg, cfg.seed + 1).to(ctx.device)
    if (predictor.s1_bits, predictor.s2_bits) != (tokenizer.s1_bits, tokenizer.s2_bits):
        raise ConfigError(f"init: the predictor's token bits ({predictor.s1_bits}, {predictor.s2_bits}) differ from "
                          f"the tokenizer's ({tokenizer.s1_bits}, {tokenizer.s2_bits}); pick a matching pair")
    models["predictor"] = predictor

    def pred_loss(model: torch.nn.Module, rows: np.ndarray, index: WindowIndex) -> LossOutput:
        x, stamps, mask = run.batch(rows, index)
        with torch.no_grad(), torch.autocast(device_type=ctx.device.type, enabled=False):
            s1, s2 = tokenizer.encode(x, half=True)
        return predictor_loss(model, predictor.head, s1, s2, stamps, mask)

    predictor.train()
    run.phases["predictor"] = run.run_phase("predictor", predictor, pred_loss, models)
    predictor.eval()

    export = Path(cfg.export_dir) if cfg.export_dir else None
    card = run.card(models=models, tag_dir=run.out / "best", checkpoint={"phase": "final", "tag": "best"})
    if ctx.is_main:
        for tag in ("best", "last"):
            write_card(run.out / tag, run.card(models=models, tag_dir=run.out / tag,
                                               checkpoint={"phase": "final", "tag": tag}))
        if export is not None:
            for key in PHASES:
                (export / key).mkdir(parents=True, exist_ok=True)
                for name in ("config.json", WEIGHTS_NAME):
                    shutil.copyfile(run.out / "best" / key / name, export / key / name)  # default permissions
            write_card(export, card)
            logger.info("exported the best pair to %s", export)
    barrier(ctx)
    return FinetuneResult(cfg, run.out, run.out / "best", run.out / "last", export, run.phases["tokenizer"],
                          run.phases["predictor"], card)


def run_finetune(config_path_or_obj: str | os.PathLike[str] | Mapping[str, Any] | FinetuneConfig, *,
                 overrides: Mapping[str, Any] | Sequence[str] | None = None, quiet: bool = False,
                 callback: Callable[[StepEvent], None] | None = None) -> FinetuneResult:
    """Train (or fine-tune) a Kronos tokenizer and predictor as the config says; see the module docstring.

    overrides: ``{"predictor_training.steps": 10}`` or ``["predictor_training.steps=10"]``.
    callback: called with a ``StepEvent`` after every optimizer step (an exception it raises stops
    the run; the next call with ``runtime.resume`` continues from the last saved state).
    Works unchanged under ``torchrun --nproc_per_node=N -m kronos_quant.training CONFIG``.
    """
    cfg = load_finetune_config(config_path_or_obj, overrides=overrides)
    commands = format_commands(config_path_or_obj, overrides)
    threads = torch.get_num_threads()
    if cfg.runtime.num_threads:
        torch.set_num_threads(cfg.runtime.num_threads)
    ctx = setup_distributed(cfg.runtime.device)
    try:
        run = _Run(cfg, ctx, commands, quiet, callback)
        return _train(run)
    finally:
        teardown_distributed(ctx)
        torch.set_num_threads(threads)
