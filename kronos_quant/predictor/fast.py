"""The fast forecasting path: batched tokenizer work, prefill once, KV-cached decoding.

Shaped like gpt-fast's decoder: ``prefill`` runs the contexts once and fills the caches,
``decode_step`` advances every row by one cached token, ``recompute_window`` handles rows whose
window slid past ``max_context``, and ``fast_generate`` is the short loop that samples from them.
``encode_ragged`` and ``decode_paths`` do the tokenizer's work once per call (the latter decodes
each series' context once for all its samples). The arithmetic runs through ``kernels`` (the
fast variant of ``model.layers``' blocks), so the paths agree with the reference path
(``reference.py``) to float rounding, token for token.

Layout. B series of different lengths are left-padded to a common length, so that every
row's newest token sits in the same column; RoPE positions are per row (0 at the row's first
real token) and masks hide the padding. With S samples the context is encoded and prefilled
once per series and the caches are then expanded to N = B * S rows.

Exactness. While a row's window fits in ``max_context`` the reference recomputes a causal
model over a growing prefix, so caching keys/values is exact. Once it slides, the oldest
token drops out and every hidden state changes; such rows are recomputed in full on their
last ``max_context`` tokens at each step, exactly as the reference does. The s2 pass caches
the cross-attention keys/values of the context the same way (its query is one token, at
rotary position 0, so keys carry no rotation).

Knows nothing about DataFrames, dates or normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kronos_quant.model import Kronos, KronosTokenizer
from kronos_quant.predictor.kernels import (
    BlockFn,
    BlockWeights,
    ModelWeights,
    TokenizerWeights,
    fill_cache,
    rope_tables,
    run_block,
)
from kronos_quant.predictor.kv_cache import LayerKVCache
from kronos_quant.predictor.sampling import counter_uniforms, sample_tokens

__all__ = ["fast_generate", "prefill", "decode_step", "recompute_window", "encode_ragged", "decode_paths",
           "GenerationSettings", "DecodeState", "Heads"]


@dataclass(frozen=True)
class GenerationSettings:
    """max_context: the model's window in tokens; horizon: H bars to generate; temperature, top_k,
    top_p: sampling (top_k = 1 is greedy); samples: S paths per series."""

    max_context: int
    horizon: int
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.9
    samples: int = 1


def _repeat_rows(t: torch.Tensor, repeats: int) -> torch.Tensor:
    """Row i * repeats + j of the result copies row i of t."""
    return t.repeat_interleave(repeats, 0) if repeats > 1 else t


@dataclass
class Heads:
    """What sampling needs for R rows at one step.

    s1_logits: (R, V1). hidden: (R, 1, d) the newest normed hidden state. dep_k, dep_v:
    (R, 4, L, hd) the dependency layer's keys/values over the row's context; dep_mask: (R, 1, 1, L)
    True = real token, or None when every key is real.
    """

    s1_logits: torch.Tensor
    hidden: torch.Tensor
    dep_k: torch.Tensor
    dep_v: torch.Tensor
    dep_mask: torch.Tensor | None

    def s2_logits(self, weights: ModelWeights, s1_ids: torch.Tensor) -> torch.Tensor:
        """float32 (R, V2) logits of s2 given the sampled s1 ids (R,)."""
        return weights.s2_logits(s1_ids, self.dep_k, self.dep_v, self.dep_mask, self.hidden)

    def select(self, rows: torch.Tensor) -> Heads:
        """The heads of rows (R',) only."""
        mask = None if self.dep_mask is None else self.dep_mask[rows]
        return Heads(self.s1_logits[rows], self.hidden[rows], self.dep_k[rows], self.dep_v[rows], mask)

    def repeat_rows(self, repeats: int) -> Heads:
        """Row i * repeats + j copies row i."""
        if repeats == 1:
            return self
        mask = None if self.dep_mask is None else _repeat_rows(self.dep_mask, repeats)
        return Heads(_repeat_rows(self.s1_logits, repeats), _repeat_rows(self.hidden, repeats),
                     _repeat_rows(self.dep_k, repeats), _repeat_rows(self.dep_v, repeats), mask)


@dataclass
class DecodeState:
    """The decode loop's state for N rows (row b * S + s is sample s of series b).

    tok1, tok2: (N, C + H) s1/s2 ids, the model's C = ``width`` context columns, then the
    generated ones. stamps: (N, C + H, 5). pad: (N,) left padding of the context columns.
    visible: the N rows' real context tokens, min(T, max_context), on the host (so that the loop
    never waits for the device); padded: whether any row has padding. caches: one per block;
    dep_cache: the dependency layer's.
    """

    tok1: torch.Tensor
    tok2: torch.Tensor
    stamps: torch.Tensor
    pad: torch.Tensor
    visible: tuple[int, ...]
    padded: bool
    caches: list[LayerKVCache]
    dep_cache: LayerKVCache
    width: int

    @classmethod
    def fan_out(cls, s1: torch.Tensor, s2: torch.Tensor, stamps: torch.Tensor, pad: torch.Tensor,
                visible: list[int], caches: list[LayerKVCache], dep_cache: LayerKVCache, *, horizon: int,
                repeats: int) -> DecodeState:
        """The state after a prefill of B series (ids (B, C), stamps (B, C + H, 5)), each repeated ``repeats`` times."""
        width = s1.shape[1]
        tok1 = s1.new_zeros(s1.shape[0] * repeats, width + horizon)
        tok2 = torch.zeros_like(tok1)
        tok1[:, :width] = _repeat_rows(s1, repeats)
        tok2[:, :width] = _repeat_rows(s2, repeats)
        return cls(tok1, tok2, _repeat_rows(stamps, repeats), _repeat_rows(pad, repeats),
                   tuple(v for v in visible for _ in range(repeats)),
                   min(visible) < width, [c.repeat_rows(repeats) for c in caches], dep_cache.repeat_rows(repeats),
                   width)


def _key_mask(pad: torch.Tensor, length: int) -> torch.Tensor:
    """(R,) pad counts -> (R, length) True where the column holds a real token."""
    return torch.arange(length, device=pad.device)[None, :] >= pad[:, None]


def _self_mask(valid: torch.Tensor) -> torch.Tensor:
    """(R, L) validity -> (R, 1, L, L) causal mask over real keys (diagonal always allowed)."""
    length = valid.shape[1]
    idx = torch.arange(length, device=valid.device)
    causal = idx[None, :] <= idx[:, None]  # (L, L)
    eye = torch.eye(length, dtype=torch.bool, device=valid.device)
    return ((causal[None] & valid[:, None, :]) | eye[None])[:, None]


def _run_blocks(blocks: list[BlockWeights], rotary: torch.nn.Module, x: torch.Tensor, pad: torch.Tensor, *,
                caches: list[LayerKVCache] | None = None, fill_last: bool = False,
                block_fn: BlockFn = run_block) -> torch.Tensor | None:
    """Causal blocks over left-padded x (R, L, d), positions counted from each row's first real token.

    Fills ``caches`` (one per block) when given; returns (R, L, d). ``fill_last``: the final block
    only stores its keys/values (nothing is returned).
    """
    length = x.shape[1]
    if bool((pad == 0).all()):  # no padding: plain causal attention, shared rotary tables
        mask = None
        rot = rope_tables(rotary, torch.arange(length, device=x.device))  # (L, 1, 1, hd/2) complex
    else:
        mask = _self_mask(_key_mask(pad, length))  # (R, 1, L, L)
        pos = (torch.arange(length, device=x.device)[None, :] - pad[:, None]).clamp_min(0)  # (R, L)
        rot = rope_tables(rotary, pos)  # (R, L, 1, 1, hd/2)
    for j, block in enumerate(blocks):
        cache = caches[j] if caches is not None else None
        if fill_last and j == len(blocks) - 1:
            fill_cache(block, x, rot=rot, cache=cache)  # type: ignore[arg-type]
            return None
        x = block_fn(block, x, rot=rot, mask=mask, cache=cache, causal=True)
    return x


@torch.inference_mode()
def encode_ragged(tokenizer: KronosTokenizer, x: torch.Tensor, pad: torch.Tensor, *,
                  weights: TokenizerWeights | None = None, block_fn: BlockFn = run_block
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded normalised bars (B, L, 6), pad (B,) -> s1, s2 ids (B, L) (padding columns are junk)."""
    z = tokenizer.embed(x)
    if len(tokenizer.encoder):
        tw = weights or TokenizerWeights.of(tokenizer)
        z = _run_blocks(tw.encoder, tw.rotary, z, pad, block_fn=block_fn)
    z = tokenizer.quant_embed(z)
    _, _, (s1, s2) = tokenizer.tokenizer(z, half=True, collect_metrics=False)
    return s1, s2


@torch.inference_mode()
def decode_paths(tokenizer: KronosTokenizer, state: DecodeState, hist_len: list[int], *, horizon: int,
                 max_context: int, repeats: int, weights: TokenizerWeights | None = None,
                 block_fn: BlockFn = run_block) -> torch.Tensor:
    """The generated bars (N, H, 6) in normalised units, after all H tokens are sampled.

    As the reference does, the tokenizer decodes each row's window, its last min(T + H, max_context)
    tokens from position 0, and keeps the last H outputs. The decoder is causal, so the window's
    context part -- the same for all S samples of a series -- is decoded once per series into KV
    caches, and the samples' H generated tokens then attend to them. hist_len: T of each series.
    """
    tw = weights or TokenizerWeights.of(tokenizer)
    prefix = [min(n + horizon, max_context) - horizon for n in hist_len]  # context tokens in each window
    width, p = state.width, max(prefix)
    device = state.tok1.device

    def embed(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        return tokenizer.post_quant_embed(tokenizer.indices_to_bits([s1, s2], half=True))

    z = embed(state.tok1[:, width:], state.tok2[:, width:])  # (N, H, d) the generated tokens
    if not len(tw.decoder):
        return tokenizer.head(z)
    caches = [LayerKVCache(p + horizon) for _ in tw.decoder]
    pad = torch.tensor([p - n for n in prefix], device=device)  # (B,) left padding of the context parts
    if p > 0:  # once per series: its first sample's row holds the shared context tokens
        first = torch.arange(len(hist_len), device=device) * repeats
        zc = embed(state.tok1[first, width - p:width], state.tok2[first, width - p:width])  # (B, P, d)
        _run_blocks(tw.decoder, tw.rotary, zc, pad, caches=caches, fill_last=True, block_fn=block_fn)
        caches = [c.repeat_rows(repeats) for c in caches]
    pad = _repeat_rows(pad, repeats)  # (N,)
    steps = torch.arange(horizon, device=device)
    rot = rope_tables(tw.rotary, (p - pad)[:, None] + steps)  # (N, H, 1, 1, hd/2)
    keys = torch.arange(p + horizon, device=device)
    mask = (keys[None, None, :] >= pad[:, None, None]) & (keys[None, :] <= p + steps[:, None])  # (N, H, P + H)
    for block, cache in zip(tw.decoder, caches):
        z = block_fn(block, z, rot=rot, mask=mask[:, None], cache=cache, start=p)
    return tokenizer.head(z)


def prefill(model: Kronos, mw: ModelWeights, s1: torch.Tensor, s2: torch.Tensor, stamps: torch.Tensor,
            pad: torch.Tensor, *, max_len: int, block_fn: BlockFn = run_block
            ) -> tuple[Heads, list[LayerKVCache], LayerKVCache]:
    """Run B left-padded contexts once: ids (B, C), stamps (B, C, 5), pad (B,).

    Returns the heads at the newest column, the blocks' KV caches and the dependency layer's
    cache, each sized for ``max_len`` positions and holding the C context positions.
    """
    caches = [LayerKVCache(max_len) for _ in mw.blocks]
    h = model.embed(s1, s2, stamps, fusion=mw.fusion)  # (B, C, d)
    h = mw.final_norm(_run_blocks(mw.blocks, mw.rotary, h, pad, caches=caches, block_fn=block_fn))
    dep_cache = LayerKVCache(max_len)
    k, v = dep_cache.update(0, *mw.cross_kv(h))
    mask = _key_mask(pad, h.shape[1])[:, None, None, :] if bool((pad > 0).any()) else None
    return Heads(mw.head_s1(h[:, -1]), h[:, -1:], k, v, mask), caches, dep_cache


def decode_step(model: Kronos, mw: ModelWeights, state: DecodeState, col: int, *,
                block_fn: BlockFn = run_block) -> Heads:
    """Advance all N rows by one cached token: the token at column ``col - 1`` goes through the
    blocks (extending the caches); returns the heads for the token at ``col``."""
    c = col - 1
    xt = model.embed(state.tok1[:, c:col], state.tok2[:, c:col], state.stamps[:, c:col], fusion=mw.fusion)
    rot = rope_tables(mw.rotary, (c - state.pad)[:, None])  # (N, 1, 1, 1, hd/2)
    key_ok = _key_mask(state.pad, col)[:, None, None, :] if state.padded else None  # (N, 1, 1, col)
    for block, cache in zip(mw.blocks, state.caches):
        xt = block_fn(block, xt, rot=rot, mask=key_ok, cache=cache, start=c)
    h = mw.final_norm(xt)  # (N, 1, d)
    k, v = state.dep_cache.update(c, *mw.cross_kv(h))
    return Heads(mw.head_s1(h[:, 0]), h, k, v, key_ok)


def recompute_window(model: Kronos, mw: ModelWeights, state: DecodeState, rows: torch.Tensor, col: int, *,
                     max_context: int, block_fn: BlockFn = run_block) -> Heads:
    """Rows whose window slid: the reference's computation over their last ``max_context`` tokens
    (columns [col - max_context, col)) from position 0, without caches. rows: (R,) indices."""
    span = slice(col - max_context, col)
    h = model.embed(state.tok1[rows, span], state.tok2[rows, span], state.stamps[rows, span],
                    fusion=mw.fusion)  # (R, ctx, d)
    rot = rope_tables(mw.rotary, torch.arange(max_context, device=h.device))
    for block in mw.blocks:
        h = block_fn(block, h, rot=rot, causal=True)
    h = mw.final_norm(h)
    k, v = mw.cross_kv(h)  # (R, 4, ctx, hd)
    return Heads(mw.head_s1(h[:, -1]), h[:, -1:], k, v, None)


Group = tuple[torch.Tensor | None, Heads]  # (row indices, or None for all rows in order; their heads)


def _next_heads(model: Kronos, mw: ModelWeights, state: DecodeState, col: int, max_context: int,
                block_fn: BlockFn) -> list[Group]:
    """The heads for column ``col`` of every row: cached steps, and window recomputes for rows past the window."""
    step = col - state.width
    sliding = [r for r, v in enumerate(state.visible) if v + step > max_context]
    if not sliding:
        return [(None, decode_step(model, mw, state, col, block_fn=block_fn))]
    device = state.tok1.device
    rows = torch.tensor(sliding, device=device)
    window = recompute_window(model, mw, state, rows, col, max_context=max_context, block_fn=block_fn)
    if len(sliding) == len(state.visible):
        return [(None, window)]
    keep = torch.tensor(sorted(set(range(len(state.visible))) - set(sliding)), device=device)
    # the cached step runs for all rows (simpler than gathering caches); sliding rows never read theirs again
    return [(keep, decode_step(model, mw, state, col, block_fn=block_fn).select(keep)), (rows, window)]


def _merge(parts: list[tuple[torch.Tensor | None, torch.Tensor]]) -> torch.Tensor:
    """Per-group (row indices, values (R', V)) -> values (N, V) in row order."""
    if len(parts) == 1 and parts[0][0] is None:
        return parts[0][1]
    first = parts[0][1]
    out = first.new_empty(sum(len(v) for _, v in parts), first.shape[1])
    for rows, values in parts:
        out[rows] = values.to(out.dtype)
    return out


@torch.inference_mode()
def fast_generate(tokenizer: KronosTokenizer, model: Kronos, x: torch.Tensor, x_pad: torch.Tensor,
                  stamps: torch.Tensor, settings: GenerationSettings, row_keys: torch.Tensor | None, *,
                  weights: tuple[ModelWeights, TokenizerWeights] | None = None,
                  block_fn: BlockFn = run_block) -> torch.Tensor:
    """Sample paths in normalised units.

    x: (B, L, 6) normalised bars, left-padded by x_pad (B,) rows of zeros.
    stamps: (B, L + H, 5) time features of the same columns plus the H future bars.
    row_keys: (B * S,) counter-stream keys (None = torch.multinomial, not batch-invariant).
    weights: the inference copies of model and tokenizer (default: built once per module, then reused).
    Returns (B, S, H, 6).
    """
    mw, tw = weights or (ModelWeights.of(model), TokenizerWeights.of(tokenizer))
    b, length, _ = x.shape
    horizon, ctx, rep = settings.horizon, settings.max_context, settings.samples
    hist_len = [length - p for p in x_pad.tolist()]  # real bars per series

    # tokenizer: encode every context in one pass; the model sees each row's last min(T, ctx) tokens
    s1, s2 = encode_ragged(tokenizer, x, x_pad, weights=tw, block_fn=block_fn)
    visible = [min(n, ctx) for n in hist_len]
    width = max(visible)  # C: context columns
    pad = torch.tensor([width - v for v in visible], device=x.device)  # (B,)
    s1, s2, stamps = s1[:, length - width:], s2[:, length - width:], stamps[:, length - width:]  # (B, C), (B, C + H, 5)

    heads, caches, dep_cache = prefill(model, mw, s1, s2, stamps[:, :width], pad, max_len=width + horizon,
                                       block_fn=block_fn)
    state = DecodeState.fan_out(s1, s2, stamps, pad, visible, caches, dep_cache, horizon=horizon, repeats=rep)
    heads = heads.repeat_rows(rep)

    def sample(logits: torch.Tensor, counter: int) -> torch.Tensor:
        u = counter_uniforms(row_keys, counter) if row_keys is not None else None
        return sample_tokens(logits, temperature=settings.temperature, top_k=settings.top_k,
                             top_p=settings.top_p, uniforms=u)

    for i in range(horizon):
        col = width + i  # the column sampled at this step
        groups = [(None, heads)] if i == 0 else _next_heads(model, mw, state, col, ctx, block_fn)
        s1_new = sample(_merge([(rows, h.s1_logits) for rows, h in groups]), 2 * i)
        s2_logits = _merge([(rows, h.s2_logits(mw, s1_new if rows is None else s1_new[rows])) for rows, h in groups])
        state.tok1[:, col] = s1_new
        state.tok2[:, col] = sample(s2_logits, 2 * i + 1)

    z = decode_paths(tokenizer, state, hist_len, horizon=horizon, max_context=ctx, repeats=rep, weights=tw,
                     block_fn=block_fn)  # (N, H, 6)
    return z.reshape(b, rep, horizon, z.shape[-1])
