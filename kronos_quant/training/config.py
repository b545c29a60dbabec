"""The fine-tuning config: a typed model of the finetune YAML, validated at load.

Owns the schema (extra keys are errors), defaults, ``--set key=value`` style overrides and the
cross-field checks (periods in order and disjoint, a train/validation gap of at least the
horizon, matching token bits). Every error is a ``ConfigError`` naming the file and key path.
Knows nothing about torch, data files or training loops.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kronos_quant.config import apply_overrides
from kronos_quant.data.bounds import parse_bound
from kronos_quant.errors import ConfigError
from kronos_quant.utils.yaml_file import read_yaml_mapping

__all__ = [
    "Period",
    "DataConfig",
    "SplitConfig",
    "WindowConfig",
    "TokenizerArchitecture",
    "PredictorArchitecture",
    "ArchitectureConfig",
    "PretrainedInit",
    "PhaseConfig",
    "RuntimeConfig",
    "FinetuneConfig",
    "load_finetune_config",
    "apply_overrides",
    "period_bounds",
]

DateLike = dt.date | dt.datetime


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Period(_Strict):
    """An inclusive time range; a date-only ``end`` includes that whole day. None = unbounded."""

    start: DateLike | None = None
    end: DateLike | None = None


class DataConfig(_Strict):
    path: str  # panel file or directory; relative paths resolve against the working directory
    instruments: list[str] | None = None  # None = every instrument in the file
    columns: dict[str, str] | None = None  # explicit {source column: panel column} mapping


class SplitConfig(_Strict):
    train: Period  # training windows lie entirely inside it
    valid: Period  # validation targets lie inside it (lookbacks may reach back before it)
    test: list[Period] = Field(default_factory=list)  # held-out periods: never loaded, must not overlap
    embargo_bars: int | None = Field(default=None, ge=0)  # bars skipped after train.end; None = horizon


class WindowConfig(_Strict):
    lookback: int = Field(default=90, ge=2)  # context rows; normalisation statistics come from them only
    horizon: int = Field(default=10, ge=1)  # forecast rows appended to each window
    clip: float = Field(default=5.0, gt=0)  # z-score clip, as at inference
    valid_stride: int | None = Field(default=None, ge=1)  # bars between validation windows; None = horizon
    max_valid_windows: int = Field(default=512, ge=1)  # evenly thinned to at most this many


class TokenizerArchitecture(_Strict):
    """Keyword arguments of ``KronosTokenizer`` (d_in is always 6)."""

    d_model: int = Field(default=64, ge=8)
    n_heads: int = Field(default=4, ge=1)
    ff_dim: int = Field(default=128, ge=8)
    n_enc_layers: int = Field(default=3, ge=1)  # (n_enc_layers - 1) transformer blocks
    n_dec_layers: int = Field(default=3, ge=1)  # (n_dec_layers - 1) transformer blocks
    ffn_dropout_p: float = Field(default=0.0, ge=0, lt=1)
    attn_dropout_p: float = Field(default=0.0, ge=0, lt=1)
    resid_dropout_p: float = Field(default=0.0, ge=0, lt=1)
    s1_bits: int = Field(default=8, ge=1, le=16)
    s2_bits: int = Field(default=8, ge=1, le=16)
    beta: float = 0.05  # BSQ commitment weight
    gamma0: float = 1.0  # per-sample entropy weight
    gamma: float = 1.1  # codebook entropy weight
    zeta: float = 0.05  # entropy penalty weight
    group_size: int = Field(default=4, ge=1)  # s1_bits + s2_bits must be divisible by it

    def kwargs(self) -> dict[str, Any]:
        return {"d_in": 6, **self.model_dump()}


class PredictorArchitecture(_Strict):
    """Keyword arguments of ``Kronos``; s1_bits/s2_bits must equal the tokenizer's."""

    s1_bits: int = Field(default=8, ge=1, le=16)
    s2_bits: int = Field(default=8, ge=1, le=16)
    n_layers: int = Field(default=3, ge=1)
    d_model: int = Field(default=128, ge=8)
    n_heads: int = Field(default=4, ge=1)
    ff_dim: int = Field(default=256, ge=8)
    ffn_dropout_p: float = Field(default=0.1, ge=0, lt=1)
    attn_dropout_p: float = Field(default=0.0, ge=0, lt=1)
    resid_dropout_p: float = Field(default=0.1, ge=0, lt=1)
    token_dropout_p: float = Field(default=0.0, ge=0, lt=1)
    learn_te: bool = True  # learned (True) or fixed sinusoidal (False) calendar embeddings

    def kwargs(self) -> dict[str, Any]:
        return self.model_dump()


class ArchitectureConfig(_Strict):
    tokenizer: TokenizerArchitecture = Field(default_factory=TokenizerArchitecture)
    predictor: PredictorArchitecture = Field(default_factory=PredictorArchitecture)


class PretrainedInit(_Strict):
    """Any name ``from_pretrained`` accepts: a preset, a Hub id, a local directory, ``builtin:NAME``."""

    tokenizer: str
    predictor: str
    tokenizer_revision: str | None = None
    predictor_revision: str | None = None


class PhaseConfig(_Strict):
    """Optimisation of one phase (tokenizer or predictor). steps: 0 skips the phase (keeps the init)."""

    steps: int = Field(default=1000, ge=0)  # optimizer steps (upper bound; early stopping may end sooner)
    batch_size: int = Field(default=32, ge=1)  # windows per micro-batch, summed over all processes
    grad_accum: int = Field(default=1, ge=1)  # micro-batches per optimizer step
    lr: float = Field(default=1e-3, gt=0)  # peak learning rate (AdamW)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)  # cosine floor as a fraction of lr
    warmup_steps: int = Field(default=0, ge=0)  # linear warm-up from 0
    weight_decay: float = Field(default=0.1, ge=0)  # applied to matrices only
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = Field(default=1.0, ge=0)  # max global grad norm; 0 = off
    eval_every: int = Field(default=100, ge=1)  # optimizer steps between validations
    patience: int = Field(default=5, ge=0)  # validations without improvement before stopping; 0 = off
    min_delta: float = Field(default=0.0, ge=0)  # improvement smaller than this does not count


class RuntimeConfig(_Strict):
    device: str = "auto"  # auto (cuda if available, else cpu), cpu, cuda, cuda:N, mps
    num_threads: int | None = Field(default=None, ge=1)  # torch.set_num_threads; None = leave as is
    amp: bool = True  # bf16 autocast -- on CUDA only; CPU always runs float32
    save_every: int = Field(default=50, ge=1)  # optimizer steps between training-state saves
    resume: bool = True  # continue from output_dir/state/*.pt when present
    log_every: int = Field(default=10, ge=1)


class FinetuneConfig(_Strict):
    name: str = "kronos-finetuned"
    seed: int = 0
    output_dir: str  # run directory: best/, last/, state/ (relative to the working directory)
    export_dir: str | None = None  # optional: the best pair and its card are copied here at the end
    max_context: int = Field(default=512, ge=2)  # recorded in the card; the context used at inference
    data: DataConfig
    split: SplitConfig
    windows: WindowConfig = Field(default_factory=WindowConfig)
    init: Literal["scratch"] | PretrainedInit = "scratch"
    architecture: ArchitectureConfig | None = None  # required with init: scratch
    tokenizer_training: PhaseConfig = Field(default_factory=PhaseConfig)
    predictor_training: PhaseConfig = Field(default_factory=PhaseConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)

    @property
    def embargo_bars(self) -> int:
        return self.windows.horizon if self.split.embargo_bars is None else self.split.embargo_bars


# ----------------------------------------------------------------------------- periods
def period_bounds(period: Period) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Inclusive (start, end) timestamps; a date-only end becomes the last microsecond of that day
    (``data.bounds.parse_bound``, the reading of date bounds everywhere)."""
    return (parse_bound(period.start, tz=None, is_end=False, name="start"),
            parse_bound(period.end, tz=None, is_end=True, name="end"))


def _overlap(a: Period, b: Period) -> bool:
    a_lo, a_hi = period_bounds(a)
    b_lo, b_hi = period_bounds(b)
    return (a_hi is None or b_lo is None or b_lo <= a_hi) and (b_hi is None or a_lo is None or a_lo <= b_hi)


def _check(cfg: FinetuneConfig, source: str) -> None:
    def fail(key: str, msg: str) -> None:
        raise ConfigError(f"{source}: {key}: {msg}")

    split = cfg.split
    for key, period in [("split.train", split.train), ("split.valid", split.valid),
                        *[(f"split.test[{i}]", p) for i, p in enumerate(split.test)]]:
        lo, hi = period_bounds(period)
        if lo is not None and hi is not None and lo > hi:
            fail(key, f"start {period.start} is after end {period.end}")
    if split.train.end is None:
        fail("split.train.end", "the training period needs an end date (validation follows it)")
    if split.valid.start is None or split.valid.end is None:
        fail("split.valid", "the validation period needs both start and end")
    _, train_hi = period_bounds(split.train)
    valid_lo, _ = period_bounds(split.valid)
    assert train_hi is not None and valid_lo is not None
    if valid_lo <= train_hi:
        fail("split.valid.start", f"{split.valid.start} must come after split.train.end ({split.train.end}); "
                                  "the periods overlap")
    for i, test in enumerate(split.test):
        for name, other in [("train", split.train), ("valid", split.valid)]:
            if _overlap(test, other):
                fail(f"split.test[{i}]", f"{test.start}..{test.end} overlaps split.{name} "
                                         f"({other.start}..{other.end}); held-out periods must be disjoint")
    if cfg.embargo_bars < cfg.windows.horizon:
        fail("split.embargo_bars", f"{cfg.embargo_bars} bars is smaller than windows.horizon "
                                   f"({cfg.windows.horizon}); the gap between training and validation targets "
                                   "must be at least the horizon (omit it to use the horizon)")
    if cfg.windows.lookback > cfg.max_context:
        fail("windows.lookback", f"{cfg.windows.lookback} exceeds max_context ({cfg.max_context}); the model "
                                 "never sees more context than that at inference")
    if cfg.init == "scratch":
        if cfg.architecture is None:
            fail("architecture", "init: scratch needs an architecture (tokenizer and predictor sizes)")
        assert cfg.architecture is not None
        tok, pred = cfg.architecture.tokenizer, cfg.architecture.predictor
        if (tok.s1_bits, tok.s2_bits) != (pred.s1_bits, pred.s2_bits):
            fail("architecture.predictor.s1_bits", f"predictor bits ({pred.s1_bits}, {pred.s2_bits}) must equal "
                                                   f"the tokenizer's ({tok.s1_bits}, {tok.s2_bits})")
        if (tok.s1_bits + tok.s2_bits) % tok.group_size:
            fail("architecture.tokenizer.group_size", f"s1_bits + s2_bits = {tok.s1_bits + tok.s2_bits} is not "
                                                      f"divisible by group_size {tok.group_size}")
        for key, arch in [("tokenizer", tok), ("predictor", pred)]:
            if arch.d_model % arch.n_heads:
                fail(f"architecture.{key}.n_heads", f"d_model {arch.d_model} is not divisible by {arch.n_heads}")
    elif cfg.architecture is not None:
        fail("architecture", "is used only with init: scratch; a pretrained init keeps its own architecture")
    for key in ("tokenizer_training", "predictor_training"):
        phase: PhaseConfig = getattr(cfg, key)
        if phase.warmup_steps > phase.steps > 0:
            fail(f"{key}.warmup_steps", f"{phase.warmup_steps} exceeds steps ({phase.steps})")


# ----------------------------------------------------------------------------- loading
def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        kind = err.get("type", "")
        msg = "unknown key (check its spelling and level)" if kind == "extra_forbidden" else err["msg"]
        lines.append(f"{source}: {loc}: {msg}")
    return "invalid finetune config:\n  " + "\n  ".join(lines)


def load_finetune_config(source: str | os.PathLike[str] | Mapping[str, Any] | FinetuneConfig, *,
                         overrides: Mapping[str, Any] | Sequence[str] | None = None) -> FinetuneConfig:
    """Read and validate a finetune config from a YAML file, a mapping or a config object."""
    if isinstance(source, FinetuneConfig):
        if not overrides:
            _check(source, "<config object>")
            return source
        raw, label = source.model_dump(), "<config object>"
    elif isinstance(source, Mapping):
        raw, label = dict(source), "<mapping>"
    else:
        label = str(source)
        raw = read_yaml_mapping(Path(source), what="finetune config", example="strategies/finetune_demo.yaml")
    raw = apply_overrides(raw, overrides, source=label)
    try:
        cfg = FinetuneConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, label)) from None
    _check(cfg, label)
    return cfg
