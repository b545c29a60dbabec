"""The fast variant of the model's blocks: fused, prepacked weights and cache-aware attention.

The block's math lives in ``kronos_quant.model.layers`` (``pre_norm_block``, ``swiglu``,
``rms_norm``); ``run_block`` calls those same functions with frozen inference copies of the
weights. What this module adds is how the arithmetic is scheduled, which affects speed and float
rounding (~1e-6 relative), nothing else:

* A block's two norms only rescale rows (``_unit_norm``); their weights are folded into the
  products that follow them (q/k/v, w1/w3), since ``W (g * y) = (W diag(g)) y``.

* The q/k/v projections are fused into one matrix, as are the feed-forward's w1/w3 (one product,
  then ``silu(a) * b`` in place) and the dependency layer's k/v.
* Rotary embedding as one complex multiplication. The rows of the q and k projections are
  permuted within each head so that the pairs RoPE rotates together, (i, i + hd/2), become
  adjacent; q and k are permuted alike, so every attention score q.k is unchanged. Keys in
  the caches live in this permuted layout; values and outputs are not permuted.
* Attention reads and extends a ``LayerKVCache`` (prefill and decode steps); ``fill_cache`` computes
  only what a block stores there (a last block whose outputs at those positions nobody reads).
* On CPU in float32, matrices are prepacked for oneDNN when this torch build has it (the
  kernels ``torch.compile`` uses on CPU), and both residual additions run fused into the matrix
  products (``FrozenLinear`` is a
  ``layers.LinearMap``). On the development machine oneDNN ran the products 1.2-2.4x faster than
  the default BLAS. Elsewhere -- CUDA, MPS, reduced precision, builds without oneDNN, or
  ``KRONOS_QUANT_ONEDNN=0`` -- the same steps run unfused through ``F.linear``.
* On CPU, causal attention over many positions (prefill, the tokenizer) runs in query chunks that
  skip the keys the mask hides (``_causal_chunks``); the fused kernel alone computes them all.
* A decode step's products (at most ``streaming.MAX_ROWS`` rows) and its one-query attention can run
  through ``streaming``'s bandwidth-bound Numba kernels on CPU in float32 (``KRONOS_QUANT_NUMBA``:
  by default only on CPUs without AVX-512); ``torch.compile`` traces torch's ops instead.

A copy is built once per module (``ModelWeights.of(model)`` keeps it in a weak map beside the module,
and rebuilds it when any parameter or buffer is replaced, moved or changed in place).
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kronos_quant.model import Kronos, KronosTokenizer
from kronos_quant.model.layers import (
    RMSNorm,
    TransformerBlock,
    pre_norm_block,
    rms_norm,
    swiglu,
)
from kronos_quant.predictor import streaming
from kronos_quant.predictor.kv_cache import LayerKVCache
from kronos_quant.utils.switches import env_switch

__all__ = ["ModelWeights", "TokenizerWeights", "FrozenLinear", "BlockWeights", "BlockFn", "run_block", "fill_cache",
           "rope_tables", "onednn_available"]

logger = logging.getLogger(__name__)

_PACK_HINT = 4096  # rows the packed layout is tuned for (measured: as good for 8 rows as for 3200)


@functools.cache
def onednn_available() -> bool:
    """Whether prepacked oneDNN linear ops (plain and with the residual fused) exist here and agree with ``F.linear``."""
    if env_switch("KRONOS_QUANT_ONEDNN") == "off":
        return False
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        gen = torch.Generator().manual_seed(0)
        w, b = torch.randn(24, 16, generator=gen), torch.randn(24, generator=gen)
        x, other = torch.randn(2, 3, 16, generator=gen), torch.randn(2, 3, 24, generator=gen)
        lin = FrozenLinear(w, b, pack=True)
        plain = F.linear(x, w, b)
        with torch.inference_mode():
            checks = [(lin(x), plain), (lin.add(x, other), plain + other)]
        ok = all(bool(torch.allclose(got, want, rtol=1e-4, atol=1e-5)) for got, want in checks)
    except Exception as err:  # noqa: BLE001 -- any failure means: use F.linear
        logger.debug("oneDNN linear unavailable (%s); using F.linear", err)
        return False
    if not ok:
        logger.warning("oneDNN linear disagrees with F.linear on this machine; using F.linear")
    return ok


class FrozenLinear:
    """``y = x @ W^T + b`` over frozen weights W (out, in); prepacked for oneDNN when ``pack``.

    ``add`` adds a residual to the product, fused into it when packed.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, pack: bool) -> None:
        self.weight = weight.detach().contiguous()
        self.bias = None if bias is None else bias.detach().contiguous()
        self.packed = None
        if pack and self.weight.device.type == "cpu" and self.weight.dtype == torch.float32:
            self.packed = torch.ops.mkldnn._reorder_linear_weight(self.weight, _PACK_HINT)
        self.few_rows = streaming.FewRowLinear(self.weight, self.bias) \
            if streaming.FewRowLinear.eligible(self.weight, self.bias) else None

    @classmethod
    def fuse(cls, weights: list[torch.Tensor], biases: list[torch.Tensor | None], pack: bool) -> FrozenLinear:
        """One linear map whose output concatenates those of (weights[i], biases[i])."""
        bias = None if all(b is None for b in biases) else torch.cat(
            [b.detach() if b is not None else w.new_zeros(w.shape[0]) for w, b in zip(weights, biases)])
        return cls(torch.cat([w.detach() for w in weights]), bias, pack)

    def _fused(self, x: torch.Tensor) -> bool:
        return self.packed is not None and x.dtype == torch.float32 and x.device.type == "cpu"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.few_rows is not None and (y := self.few_rows(x)) is not None:
            return y
        if self._fused(x):
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)

    def add(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """``other + self(x)`` (a residual connection; other shaped like the output)."""
        if self.few_rows is not None and (y := self.few_rows(x, other)) is not None:
            return y
        if self._fused(x) and other.dtype == torch.float32 and other.is_contiguous():
            return torch.ops.mkldnn._linear_pointwise.binary(x, other, self.packed, self.bias, "add")
        return other + F.linear(x, self.weight, self.bias)


def _norm(module: RMSNorm) -> Callable[[torch.Tensor], torch.Tensor]:
    """``module``'s normalisation (``layers.rms_norm``) over a frozen copy of its weight."""
    return functools.partial(rms_norm, weight=module.weight.detach(), eps=module.eps)


def _unit_norm(x: torch.Tensor, *, eps: float) -> torch.Tensor:
    """``rms_norm`` without its weight: ``x * rsqrt(mean(x^2) + eps)`` over the last dim, x (..., d) -> (..., d).

    For a block's norms, whose weights ``BlockWeights.of`` folds into the products that follow
    (``W (g * y) = (W diag(g)) y``). float32 takes the mean square from one reduction pass
    (``vector_norm``): two passes over x instead of five (0.40 against 0.75 ms on 3,200 rows of
    512 on a 2-core Xeon), rounding differently by ~1e-7 relative.
    """
    if x.dtype == torch.float32:
        mean_square = torch.linalg.vector_norm(x, dim=-1, keepdim=True).square_().div_(x.shape[-1])
        return x * mean_square.add_(eps).rsqrt_()
    return rms_norm(x, weight=None, eps=eps)


def _scale_inputs(weight: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """``weight`` (out, in) times a norm's weight ``gain`` (in,) along its inputs, computed in float32."""
    return (weight.detach().float() * gain.detach().float()).to(weight.dtype)


def _rope_pairs_adjacent(n_heads: int, head_dim: int) -> torch.Tensor:
    """Row order that makes RoPE's pairs (i, i + hd/2) adjacent within each head: 0, hd/2, 1, hd/2 + 1, ..."""
    half = head_dim // 2
    within = torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).reshape(-1)
    return (torch.arange(n_heads)[:, None] * head_dim + within[None, :]).reshape(-1)


@dataclass
class BlockWeights:
    """The fast copy of a ``TransformerBlock``: fused q/k/v (q, k rows in RoPE-pair order), out, fused w1/w3
    (``w13``), w2, and the two norms (their weights folded into qkv and w13; see ``of``)."""

    norm1: Callable[[torch.Tensor], torch.Tensor]
    qkv: FrozenLinear
    out: FrozenLinear
    norm2: Callable[[torch.Tensor], torch.Tensor]
    w13: FrozenLinear
    w2: FrozenLinear
    n_heads: int
    head_dim: int

    @classmethod
    def of(cls, block: TransformerBlock, pack: bool) -> BlockWeights:
        """The norms' weights are folded into q/k/v and w1/w3, so ``norm1``/``norm2`` only rescale rows."""
        attn, ffn = block.self_attn, block.ffn
        g1, g2 = block.norm1.weight, block.norm2.weight  # type: ignore[union-attr]
        perm = _rope_pairs_adjacent(attn.n_heads, attn.head_dim).to(attn.q_proj.weight.device)
        q_k_v = [attn.q_proj.weight[perm], attn.k_proj.weight[perm], attn.v_proj.weight]
        qkv = FrozenLinear.fuse([_scale_inputs(w, g1) for w in q_k_v],
                                [attn.q_proj.bias[perm], attn.k_proj.bias[perm], attn.v_proj.bias], pack)
        w13 = FrozenLinear.fuse([_scale_inputs(w, g2) for w in (ffn.w1.weight, ffn.w3.weight)], [None, None], pack)
        return cls(norm1=functools.partial(_unit_norm, eps=block.norm1.eps), qkv=qkv,
                   out=FrozenLinear(attn.out_proj.weight, attn.out_proj.bias, pack),
                   norm2=functools.partial(_unit_norm, eps=block.norm2.eps), w13=w13,
                   w2=FrozenLinear(ffn.w2.weight, None, pack),
                   n_heads=attn.n_heads, head_dim=attn.head_dim)


def rope_tables(rotary: nn.Module, positions: torch.Tensor) -> torch.Tensor:
    """Rotations for ``_rope``: positions (L,) or (R, L) -> complex64 (L or R, L, 1, 1, hd/2).

    Entry j is ``cos(a_j) + i sin(a_j)`` with the module's angles a = ``rotary.angles(positions)``.
    """
    freqs = rotary.angles(positions)  # (..., L, hd/2)
    return torch.polar(torch.ones_like(freqs), freqs)[..., None, None, :]


def _rope(qk: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Rotate q and k in place: qk (R, L, 2, H, hd) in RoPE-pair order, rot from ``rope_tables``.

    With pairs (a, b) adjacent, ``a*cos - b*sin, b*cos + a*sin`` (``layers.apply_rotary``) is the
    complex product (a + ib)(cos + i sin).
    """
    shape = qk.shape
    pairs = qk.unflatten(-1, (shape[-1] // 2, 2))
    if qk.dtype in (torch.float32, torch.float64):
        torch.view_as_complex(pairs).mul_(rot)
        return qk
    a, b = pairs[..., 0], pairs[..., 1]  # reduced precision: the real form (no complex bf16 on every device)
    cos, sin = rot.real.to(qk.dtype), rot.imag.to(qk.dtype)
    return torch.stack((a * cos - b * sin, b * cos + a * sin), dim=-1).flatten(-2)


def _project(w: BlockWeights, h: torch.Tensor, rot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rotated q, k and v (R, H, L, hd) of normed inputs h (R, L, d); q and k in RoPE-pair order."""
    r, length, _ = h.shape
    qkv = w.qkv(h).view(r, length, 3, w.n_heads, w.head_dim)
    qk = _rope(qkv[:, :, :2], rot)  # (R, L, 2, H, hd)
    return qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)


def _attention(w: BlockWeights, h: torch.Tensor, *, residual: torch.Tensor, rot: torch.Tensor,
               mask: torch.Tensor | None, cache: LayerKVCache | None, start: int, causal: bool) -> torch.Tensor:
    """``residual + out(attention(h))`` for h (R, L, d): the fast variant of ``MultiHeadAttentionWithRoPE``."""
    r, length, d = h.shape
    q, k, v = _project(w, h, rot)
    if cache is not None:  # attend over the cache's copies: contiguous per head, faster to read than the views
        k, v = cache.update(start, k, v)
    att = _attend(q, k, v, mask=mask, causal=causal)  # (R, H, L, hd)
    return w.out.add(att.transpose(1, 2).reshape(r, length, d), residual)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, mask: torch.Tensor | None,
            causal: bool = False) -> torch.Tensor:
    """Attention of q (R, H, L, hd) over k, v (R, H, S, hd); mask (R or 1, 1, L, S) True = may attend.

    ``causal``: the queries are the keys' positions (L == S) and none attends to a later one;
    without a mask that is plain causal attention, with one the mask must itself be causal. Long
    causal runs on CPU go through ``_causal_chunks``; one query per row (a decode step) goes
    through ``streaming`` where it applies.
    """
    if q.shape[2] == 1 and not (causal and mask is None):
        att = streaming.one_query_attention(q, k, v, mask)
        if att is not None:
            return att
    # CUDA's flash kernel skips hidden keys itself (and would lose that to a mask); torch.compile traces one call
    if causal and q.device.type == "cpu" and q.shape[2] == k.shape[2] >= 2 * _QUERY_CHUNK \
            and not streaming.compiling():
        return _causal_chunks(q, k, v, mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None)


_QUERY_CHUNK = 80  # query rows per call in _causal_chunks (best of 50-200 on 400 positions)


@functools.lru_cache(maxsize=16)
def _chunk_masks(length: int, device: torch.device) -> tuple[tuple[int, int, torch.Tensor], ...]:
    """(start, end, causal mask (end - start, end)) for the query chunks of a causal run of ``length``."""
    n = -(-length // _QUERY_CHUNK)
    bounds = [round(length * i / n) for i in range(n + 1)]
    return tuple((s, e, torch.ones(e - s, e, dtype=torch.bool, device=device).tril(diagonal=s))
                 for s, e in zip(bounds[:-1], bounds[1:]))


def _causal_chunks(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Causal attention (q, k, v (R, H, L, hd); mask None or a causal (R or 1, 1, L, L)) in query chunks.

    Chunk [s, e) attends only over keys [0, e): torch's fused kernel computes every key of a
    call even when the causal mask hides it, so whole chunks cut the work by up to half (on 400
    positions, 11.1 -> 7.8 ms per layer of Kronos-small on a 2-core Xeon). Returns (R, H, L, hd)
    as a view of (R, L, H, hd) memory, so merging the heads needs no copy.
    """
    r, h, length, hd = q.shape
    out = q.new_empty(r, length, h, v.shape[-1]).transpose(1, 2)
    for s, e, tri in _chunk_masks(length, q.device):
        m = tri if mask is None else mask[:, :, s:e, :e]
        out[:, :, s:e] = F.scaled_dot_product_attention(q[:, :, s:e], k[:, :, :e], v[:, :, :e], attn_mask=m,
                                                        is_causal=False)
    return out


def run_block(w: BlockWeights, x: torch.Tensor, *, rot: torch.Tensor, mask: torch.Tensor | None = None,
              cache: LayerKVCache | None = None, start: int = 0, causal: bool = False) -> torch.Tensor:
    """The fast variant of ``TransformerBlock.forward``: one block over x (R, L, d) -> (R, L, d).

    rot: rotations from ``rope_tables`` for the positions of x. mask: (R or 1, 1, L, L_keys),
    True = may attend. With a cache, keys/values are stored at [start, start + L) and the queries
    attend over all cached positions [0, start + L). ``mask=None`` with ``causal`` means plain
    causal attention of x over itself (no cached prefix), otherwise every key is visible.
    """
    attention = functools.partial(_attention, w, rot=rot, mask=mask, cache=cache, start=start, causal=causal)
    feed_forward = functools.partial(swiglu, w13=w.w13, w2=w.w2)
    return pre_norm_block(x, norm1=w.norm1, attention=attention, norm2=w.norm2, feed_forward=feed_forward)


def fill_cache(w: BlockWeights, x: torch.Tensor, *, rot: torch.Tensor, cache: LayerKVCache, start: int = 0) -> None:
    """Only the keys/values a block would store for x (R, L, d) at [start, start + L): for a last block
    whose outputs at these positions nobody reads, only later queries attend to them."""
    _, k, v = _project(w, w.norm1(x), rot)
    cache.update(start, k, v)


BlockFn = Callable[..., torch.Tensor]  # run_block or a compiled version of it


def _default_pack(module: nn.Module) -> bool:
    first = next(module.parameters())
    return first.device.type == "cpu" and first.dtype == torch.float32 and onednn_available()


def _signature(module: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced, moved or modified in place."""
    return tuple((id(t), t.data_ptr(), t._version, t.dtype, str(t.device))
                 for t in list(module.parameters()) + list(module.buffers()))


_STORE: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()


class _Cached:
    """Build once per module; rebuilt when the module's weights change (see ``_signature``)."""

    @classmethod
    def of(cls, module: Any, pack: bool | None = None) -> Any:
        """The cached inference copy of ``module`` (``pack=None``: prepack where oneDNN is available)."""
        pack = _default_pack(module) if pack is None else pack
        key = (cls.__name__, pack)
        sig = _signature(module)
        store = _STORE.setdefault(module, {})  # beside the module, so pickling or copying it is unaffected
        hit = store.get(key)
        if hit is not None and hit[0] == sig:
            return hit[1]
        built = cls(module, pack)
        store[key] = (sig, built)
        return built


class TokenizerWeights(_Cached):
    """The tokenizer's encoder and decoder blocks (the small linear maps stay on the module)."""

    def __init__(self, tokenizer: KronosTokenizer, pack: bool) -> None:
        self.packed = pack
        self.encoder = [BlockWeights.of(b, pack) for b in tokenizer.encoder]  # type: ignore[arg-type]
        self.decoder = [BlockWeights.of(b, pack) for b in tokenizer.decoder]  # type: ignore[arg-type]
        blocks = list(tokenizer.encoder) + list(tokenizer.decoder)
        self.rotary = blocks[0].self_attn.rotary if blocks else None  # type: ignore[union-attr]


class ModelWeights(_Cached):
    """The predictor's fast copy: the embedding's fusion projection (``Kronos.embed(..., fusion=)``),
    blocks, final norm, s1 head, and the dependency layer with the s2 head (``s2_logits``, the fast
    variant of ``DependencyAwareLayer`` + ``DualHead.cond_forward`` for one query over cached keys/values)."""

    def __init__(self, model: Kronos, pack: bool) -> None:
        self.packed = pack
        fusion = model.embedding.fusion_proj
        self.fusion = FrozenLinear(fusion.weight, fusion.bias, pack)
        self.blocks = [BlockWeights.of(b, pack) for b in model.transformer]  # type: ignore[arg-type]
        self.rotary = model.transformer[0].self_attn.rotary  # type: ignore[union-attr]
        cross = model.dep_layer.cross_attn
        self.dep_q = FrozenLinear(cross.q_proj.weight, cross.q_proj.bias, pack)
        self.dep_kv = FrozenLinear.fuse([cross.k_proj.weight, cross.v_proj.weight], [cross.k_proj.bias, cross.v_proj.bias],
                                        pack)
        self.dep_out = FrozenLinear(cross.out_proj.weight, cross.out_proj.bias, pack)
        self.dep_heads, self.dep_head_dim = cross.n_heads, cross.head_dim
        self.dep_norm = _norm(model.dep_layer.norm)
        self.final_norm = _norm(model.norm)
        self.head_s1 = FrozenLinear(model.head.proj_s1.weight, model.head.proj_s1.bias, pack)
        self.head_s2 = FrozenLinear(model.head.proj_s2.weight, model.head.proj_s2.bias, pack)
        self.emb_s1 = model.embedding.emb_s1

    def cross_kv(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Dependency-layer keys and values (R, 4, L, hd) of normed hidden states h (R, L, d), unrotated."""
        r, length, _ = h.shape
        kv = self.dep_kv(h).view(r, length, 2, self.dep_heads, self.dep_head_dim)
        return kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)

    def s2_logits(self, s1_ids: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                  h: torch.Tensor) -> torch.Tensor:
        """float32 s2 logits (R, V2) for sampled s1 ids (R,) over context keys/values (R, 4, L, hd).

        h (R, 1, d): the last normed hidden state. The query sits at rotary position 0 (no
        rotation), as in the original's generation.
        """
        r = s1_ids.shape[0]
        q = self.dep_q(self.emb_s1(s1_ids[:, None])).view(r, 1, self.dep_heads, self.dep_head_dim)
        att = _attend(q.transpose(1, 2), k, v, mask=mask)  # (R, 4, 1, hd)
        x2 = self.dep_norm(h + self.dep_out(att.transpose(1, 2).reshape(r, 1, -1)))
        return self.head_s2(x2)[:, 0].float()
