"""Array-level batched probabilistic predictor (``BatchPredictor``).

Arrays in, arrays out: B series of their own lengths with time features for past and future
bars -> sample paths (B, S, H, 6) in price units plus summaries. Chooses the device, runs
under ``torch.inference_mode``, splits large calls into micro-batches under a memory budget,
and selects the fast (KV-cached) or reference path. Knows nothing about DataFrames or dates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import torch

from kronos_quant.model import Kronos, KronosTokenizer
from kronos_quant.model.spec import ModelSpec, canonical_dtype, kronos_identity
from kronos_quant.predictor.fast import GenerationSettings, fast_generate
from kronos_quant.predictor.inputs import check_inputs, denormalize, normalize
from kronos_quant.predictor.kernels import BlockFn, ModelWeights, TokenizerWeights, run_block
from kronos_quant.predictor.reference import reference_generate
from kronos_quant.predictor.sampling import row_keys
from kronos_quant.schema import CLOSE_INDEX, DEFAULT_QUANTILES, ForecastResult, SamplingSpec
from kronos_quant.utils.hashing import stable_hash
from kronos_quant.utils.progress import make_progress

__all__ = ["BatchPredictor", "select_device", "derive_seeds"]

logger = logging.getLogger(__name__)


def select_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else cuda, then mps, then cpu."""
    if device is not None and str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def derive_seeds(seed: int, n: int) -> list[int]:
    """Per-series seeds for a call without explicit ones: a stable function of (seed, index)."""
    return [int(stable_hash("series-seed", int(seed), i)[:15], 16) for i in range(n)]


class BatchPredictor:
    """Batched, KV-cached Kronos sampling over ragged batches.

    model, tokenizer: loaded modules. device: None = auto (cuda > mps > cpu). max_context: the
    model's context in tokens. clip: z-score clip. dtype: float32 (default); bfloat16/float16 on
    CUDA only (autocast). method: "fast" (default) or "reference". compile: run the fast
    path's transformer blocks through ``torch.compile`` (True = inductor, or a backend name; plain,
    unpacked weights then, so the compiler picks its own kernels). memory_budget_mb: per
    micro-batch (default 2048 on CPU, half the free memory on CUDA). spec: the ``ModelSpec`` the
    modules were loaded from (``from_spec`` passes it); its checkpoint files then define
    ``identity``, so the predictor shares forecast-cache entries with ``forecasters.build_forecaster``
    for the same model. Without it, ``identity`` digests the in-memory modules.
    """

    def __init__(self, model: Kronos, tokenizer: KronosTokenizer, device: str | torch.device | None = None,
                 max_context: int = 512, clip: float = 5, *, dtype: str | torch.dtype | None = None,
                 method: str = "fast", compile: bool | str = False, memory_budget_mb: float | None = None,
                 spec: ModelSpec | None = None) -> None:
        if method not in ("fast", "reference"):
            raise ValueError(f"method must be 'fast' or 'reference', got {method!r}")
        if max_context < 1:
            raise ValueError(f"max_context must be >= 1, got {max_context}")
        self.device = select_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer.to(self.device).eval()
        self.max_context = int(max_context)
        self.clip = float(clip)
        self.method = method
        self.memory_budget_mb = memory_budget_mb
        self.spec = spec
        self._identity: dict[str, Any] | None = None
        self._block_fn: BlockFn = run_block
        self._pack: bool | None = None  # None: prepack for oneDNN where available (CPU, float32)
        if compile:
            backend = compile if isinstance(compile, str) else "inductor"
            self._block_fn = torch.compile(run_block, dynamic=True, backend=backend)
            self._pack = False  # the compiler chooses its own kernels from plain weights

    @classmethod
    def from_spec(cls, spec: ModelSpec, *, device: str | torch.device | None = None, **kwargs: Any) -> Self:
        """Load the model pair of ``spec`` with its max_context, clip and dtype (see ``ModelSpec``);
        kwargs: method, compile, memory_budget_mb."""
        model, tokenizer = spec.load_modules()
        return cls(model, tokenizer, device=device, max_context=spec.max_context, clip=spec.clip, dtype=spec.dtype,
                   spec=spec, **kwargs)

    # -- identity -------------------------------------------------------------------------
    @property
    def identity(self) -> dict[str, Any]:
        """What determines this predictor's numbers (for caches and provenance; see ``model.spec``)."""
        if self._identity is None:
            s = self.spec
            if s is not None:
                weights, tokenizer_weights = s.digests()
                names = dict(model_id=s.model_id, revision=s.revision, tokenizer_id=s.tokenizer_id,
                             tokenizer_revision=s.tokenizer_revision)
            else:  # in-memory modules: key on their configs and tensors; names only label them
                weights, tokenizer_weights = _state_digest(self.model), _state_digest(self.tokenizer)
                src, tok_src = (getattr(m, "source", None) or {} for m in (self.model, self.tokenizer))
                names = dict(model_id=src.get("name_or_path", "in-memory"), revision=src.get("revision"),
                             tokenizer_id=tok_src.get("name_or_path", "in-memory"),
                             tokenizer_revision=tok_src.get("revision"))
            self._identity = kronos_identity(**names, weights=weights, tokenizer_weights=tokenizer_weights,
                                             max_context=self.max_context, clip=self.clip, dtype=str(self.dtype))
        return self._identity

    # -- the Forecaster protocol ------------------------------------------------------------
    def forecast_arrays(self, series: Sequence[np.ndarray], past_stamps: Sequence[np.ndarray],
                        future_stamps: Sequence[np.ndarray], *, horizon: int, sampling: SamplingSpec | None = None,
                        seeds: Sequence[int] | None = None, quantile_levels: Sequence[float] = DEFAULT_QUANTILES,
                        names: Sequence[str] | None = None, quiet: bool | None = None,
                        method: str | None = None) -> ForecastResult:
        """Sample paths for B series.

        series[i]: (T_i, 6) open, high, low, close, volume, amount (price units);
        past_stamps[i]: (T_i, 5) int minute, hour, weekday, day, month; future_stamps[i]: (H, 5).
        seeds: one per series (default: derived from ``sampling.seed`` and the index).
        Returns ForecastResult with paths (B, S, H, 6) float64.
        """
        sampling = sampling or SamplingSpec()
        xs = check_inputs(series, past_stamps, future_stamps, horizon, names=names)
        seeds = list(seeds) if seeds is not None else derive_seeds(sampling.seed, len(xs))
        if len(seeds) != len(xs):
            raise ValueError(f"got {len(seeds)} seeds for {len(xs)} series; pass one per series")
        method = method or self.method
        t0 = time.perf_counter()
        out = np.empty((len(xs), sampling.samples, horizon, 6), dtype=np.float64)
        chunks = self._plan_chunks([len(x) for x in xs], horizon, sampling.samples)
        with make_progress(len(xs), "forecasting", quiet=quiet, unit="series") as bar:
            for idx in chunks:
                out[idx] = self._run_chunk([xs[i] for i in idx], [past_stamps[i] for i in idx],
                                           [future_stamps[i] for i in idx], horizon, sampling,
                                           [seeds[i] for i in idx], method)
                bar.update(len(idx))
        elapsed = time.perf_counter() - t0
        last_close = np.array([x[-1, CLOSE_INDEX] for x in xs], dtype=np.float64)
        info = {"seconds": elapsed, "n_series": len(xs), "n_chunks": len(chunks), "method": method,
                "device": str(self.device), "generated_tokens": len(xs) * sampling.samples * horizon}
        logger.debug("forecast %d series x %d samples x %d steps in %.3fs (%s, %d chunks)", len(xs),
                     sampling.samples, horizon, elapsed, method, len(chunks))
        return ForecastResult(paths=out, last_close=last_close, quantile_levels=tuple(quantile_levels), info=info)

    # -- internals --------------------------------------------------------------------------
    def _budget_tokens(self) -> int:
        cfg = self.model.config
        elem = 2 if self.dtype in (torch.bfloat16, torch.float16) else 4
        per_token = (2 * cfg["n_layers"] + 2 + 8) * cfg["d_model"] * elem  # KV caches + activations
        if self.memory_budget_mb is not None:
            budget = self.memory_budget_mb * 2**20
        elif self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            budget = free * 0.5
        else:
            budget = 2048 * 2**20
        return max(1, int(budget // per_token))

    def _plan_chunks(self, lengths: list[int], horizon: int, samples: int) -> list[list[int]]:
        """Group series (sorted by length, to limit padding) into micro-batches under the budget."""
        budget = self._budget_tokens()
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        chunks: list[list[int]] = []
        cur: list[int] = []
        for i in order:  # ascending lengths: the newest series is the longest of its chunk
            width = min(lengths[i], self.max_context) + horizon
            enc = lengths[i]
            if cur and ((len(cur) + 1) * samples * width > budget or (len(cur) + 1) * enc > budget):
                chunks.append(cur)
                cur = []
            cur.append(i)
        if cur:
            chunks.append(cur)
        return chunks

    def _run_chunk(self, xs: list[np.ndarray], past: list[np.ndarray], fut: list[np.ndarray], horizon: int,
                   sampling: SamplingSpec, seeds: list[int], method: str) -> np.ndarray:
        if horizon > self.max_context:
            raise ValueError(f"horizon (pred_len) {horizon} exceeds max_context {self.max_context}: the tokenizer "
                             "decodes at most max_context tokens; shorten the horizon or raise max_context")
        norm = [normalize(x, self.clip) for x in xs]
        means = np.stack([m for _, m, _ in norm])  # (B, 6)
        stds = np.stack([s for _, _, s in norm])
        keys = row_keys(torch.tensor([s & (2**62 - 1) for s in seeds], dtype=torch.int64, device=self.device),
                        sampling.samples)
        with torch.inference_mode(), self._autocast():
            if method == "reference":
                z = self._reference(norm, past, fut, horizon, sampling, keys)
            else:
                z = self._fast(norm, past, fut, horizon, sampling, keys)
        z = z.float().cpu().numpy()  # (B, S, H, 6) normalised
        prices = denormalize(z, means[:, None, None, :], stds[:, None, None, :])
        return prices.astype(np.float64)

    def _fast(self, norm: list, past: list[np.ndarray], fut: list[np.ndarray], horizon: int,
              sampling: SamplingSpec, keys: torch.Tensor) -> torch.Tensor:
        lengths = [len(z) for z, _, _ in norm]
        length = max(lengths)
        b = len(norm)
        x = np.zeros((b, length, 6), dtype=np.float32)
        stamps = np.zeros((b, length + horizon, 5), dtype=np.int64)
        for i, ((z, _, _), ps, fs) in enumerate(zip(norm, past, fut)):
            x[i, length - len(z):] = z
            stamps[i, length - len(z):length] = np.asarray(ps)
            stamps[i, length:] = np.asarray(fs)
        pad = torch.tensor([length - n for n in lengths], device=self.device)
        settings = GenerationSettings(max_context=self.max_context, horizon=horizon, temperature=sampling.temperature,
                                      top_k=sampling.top_k, top_p=sampling.top_p, samples=sampling.samples)
        weights = (ModelWeights.of(self.model, self._pack), TokenizerWeights.of(self.tokenizer, self._pack))
        return fast_generate(self.tokenizer, self.model, torch.from_numpy(x).to(self.device), pad,
                             torch.from_numpy(stamps).to(self.device), settings, keys, weights=weights,
                             block_fn=self._block_fn)

    def _reference(self, norm: list, past: list[np.ndarray], fut: list[np.ndarray], horizon: int,
                   sampling: SamplingSpec, keys: torch.Tensor) -> torch.Tensor:
        """The reference path needs equal lengths: run each group of equal-length series together."""
        s = sampling.samples
        out: list[torch.Tensor | None] = [None] * len(norm)
        groups: dict[int, list[int]] = {}
        for i, (z, _, _) in enumerate(norm):
            groups.setdefault(len(z), []).append(i)
        for idx in groups.values():
            x = torch.from_numpy(np.stack([norm[i][0] for i in idx])).to(self.device)
            xs = torch.from_numpy(np.stack([np.asarray(past[i]) for i in idx])).to(self.device)
            ys = torch.from_numpy(np.stack([np.asarray(fut[i]) for i in idx])).to(self.device)
            k = torch.cat([keys[i * s:(i + 1) * s] for i in idx])
            z = reference_generate(self.tokenizer, self.model, x, xs, ys, max_context=self.max_context,
                                   horizon=horizon, temperature=sampling.temperature, top_k=sampling.top_k,
                                   top_p=sampling.top_p, samples=s, row_keys=k)
            for j, i in enumerate(idx):
                out[i] = z[j]
        return torch.stack(out)  # type: ignore[arg-type]

    def _autocast(self) -> Any:
        if self.dtype in (torch.bfloat16, torch.float16):
            return torch.autocast(device_type=self.device.type, dtype=self.dtype)
        return torch.autocast(device_type=self.device.type, enabled=False)


def _resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    dtype = getattr(torch, canonical_dtype(None if dtype is None else str(dtype)))
    if dtype in (torch.bfloat16, torch.float16) and device.type != "cuda":
        raise ValueError(f"dtype {dtype} is supported on CUDA only; use float32 on {device.type}")
    return dtype


def _state_digest(module: torch.nn.Module) -> str:
    """16 hex digits over a module's class, config and tensors."""
    h: list[Any] = [str(module.__class__.__name__), getattr(module, "config", None)]
    for k, v in sorted(module.state_dict().items()):
        h.append(k)
        h.append(v.detach().float().cpu().numpy())
    return stable_hash(*h)[:16]
