"""The fast forecasting path: batched tokenizer work, prefill once, KV-cached decoding.

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

The arithmetic runs through ``kernels`` (fused, prepacked copies of the weights); the
reference path uses the modules themselves, so the two agree to float rounding, token for token.

Knows nothing about DataFrames, dates or normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kronos_quant.model import Kronos, KronosTokenizer
from kronos_quant.model.layers import LayerKVCache
from kronos_quant.predictor.kernels import (
    BlockFn,
    BlockWeights,
    ModelWeights,
    TokenizerWeights,
    rope_tables,
    run_block,
)
from kronos_quant.predictor.sampling import counter_uniforms, sample_tokens

__all__ = ["fast_generate", "encode_ragged", "decode_ragged", "GenerationSettings"]


@dataclass(frozen=True)
class GenerationSettings:
    max_context: int
    pred_len: int
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.9
    sample_count: int = 1


def _left_pad_mask(pad: torch.Tensor, length: int) -> torch.Tensor:
    """(R,) pad counts -> (R, length) True where the column holds a real token."""
    cols = torch.arange(length, device=pad.device)
    return cols[None, :] >= pad[:, None]


def _self_mask(valid: torch.Tensor) -> torch.Tensor:
    """(R, L) validity -> (R, 1, L, L) causal mask over real keys (diagonal always allowed)."""
    length = valid.shape[1]
    idx = torch.arange(length, device=valid.device)
    causal = idx[None, :] <= idx[:, None]  # (L, L)
    return (causal[None] & valid[:, None, :]) | torch.eye(length, dtype=torch.bool, device=valid.device)[None]


def _run_blocks(blocks: list[BlockWeights], rotary: torch.nn.Module, x: torch.Tensor, pad: torch.Tensor,
                caches: list[LayerKVCache] | None = None, block_fn: BlockFn = run_block) -> torch.Tensor:
    """Run causal blocks over left-padded x (R, L, d) with per-row positions; optionally fill caches."""
    length = x.shape[1]
    if bool((pad == 0).all()):  # no padding: plain causal attention, shared rotary tables
        mask = None
        rot = rope_tables(rotary, torch.arange(length, device=x.device))  # (L, 1, 1, hd/2) complex
    else:
        mask = _self_mask(_left_pad_mask(pad, length))[:, None]  # (R, 1, L, L)
        pos = (torch.arange(length, device=x.device)[None, :] - pad[:, None]).clamp_min(0)  # (R, L)
        rot = rope_tables(rotary, pos)  # (R, L, 1, 1, hd/2)
    for j, block in enumerate(blocks):
        x = block_fn(block, x, rot, mask, caches[j] if caches is not None else None, 0, True)
    return x


@torch.inference_mode()
def encode_ragged(tokenizer: KronosTokenizer, x: torch.Tensor, pad: torch.Tensor,
                  weights: TokenizerWeights | None = None, block_fn: BlockFn = run_block) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded normalised bars (B, L, 6), pad (B,) -> s1, s2 ids (B, L) (padding columns are junk)."""
    z = tokenizer.embed(x)
    if len(tokenizer.encoder):
        tw = weights or TokenizerWeights.of(tokenizer)
        z = _run_blocks(tw.encoder, tw.rotary, z, pad, block_fn=block_fn)
    z = tokenizer.quant_embed(z)
    _, _, (s1, s2) = tokenizer.tokenizer(z, half=True, collect_metrics=False)
    return s1, s2


@torch.inference_mode()
def decode_ragged(tokenizer: KronosTokenizer, s1: torch.Tensor, s2: torch.Tensor, pad: torch.Tensor,
                  weights: TokenizerWeights | None = None, block_fn: BlockFn = run_block) -> torch.Tensor:
    """Left-padded ids (R, L), pad (R,) -> reconstruction (R, L, 6) (padding rows are junk)."""
    z = tokenizer.post_quant_embed(tokenizer.indices_to_bits([s1, s2], half=True))
    if len(tokenizer.decoder):
        tw = weights or TokenizerWeights.of(tokenizer)
        z = _run_blocks(tw.decoder, tw.rotary, z, pad, block_fn=block_fn)
    return tokenizer.head(z)


def _gather_windows(buf: torch.Tensor, end: int, width: int) -> torch.Tensor:
    """Columns [end - width, end) of buf (R, C, ...)."""
    return buf[:, end - width:end]


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
    horizon, ctx, n_samples = settings.pred_len, settings.max_context, settings.sample_count
    device = x.device
    hist_len = length - x_pad  # (B,) real bars per series

    # 1) tokenizer: encode all contexts in one pass; keep each row's last min(T, ctx) tokens
    s1_all, s2_all = encode_ragged(tokenizer, x, x_pad, tw, block_fn)
    lc = int(torch.clamp(hist_len, max=ctx).max())
    tm = torch.clamp(hist_len, max=ctx)  # (B,) model-visible history
    pad = lc - tm  # (B,) left padding in the model's layout
    s1_ctx, s2_ctx = s1_all[:, length - lc:], s2_all[:, length - lc:]
    st = stamps[:, length - lc:]  # (B, lc + H, 5)

    # 2) prefill once per series
    caches = [LayerKVCache(lc + horizon) for _ in mw.blocks]
    h = model.embed(s1_ctx, s2_ctx, st[:, :lc])
    h = mw.final_norm(_run_blocks(mw.blocks, mw.rotary, h, pad, caches, block_fn))  # (B, lc, d)
    dep_cache = LayerKVCache(lc + horizon)
    dep_cache.update(0, *mw.cross_kv(h))
    s1_logits = mw.head_s1(h[:, -1])  # (B, V1)
    h_last = h[:, -1:]  # (B, 1, d)

    # 3) fan out to N = B * S rows
    n = b * n_samples
    rep = n_samples
    caches = [c.repeat_rows(rep) for c in caches]
    dep_cache = dep_cache.repeat_rows(rep)
    s1_logits = s1_logits.repeat_interleave(rep, 0)
    h_last = h_last.repeat_interleave(rep, 0)
    pad_n = pad.repeat_interleave(rep, 0)
    tm_n = tm.repeat_interleave(rep, 0)
    st_n = st.repeat_interleave(rep, 0)
    tok1 = torch.zeros(n, lc + horizon, dtype=torch.long, device=device)
    tok2 = torch.zeros_like(tok1)
    tok1[:, :lc] = s1_ctx.repeat_interleave(rep, 0)
    tok2[:, :lc] = s2_ctx.repeat_interleave(rep, 0)
    cols = torch.arange(lc + horizon, device=device)
    window_rot = rope_tables(mw.rotary, torch.arange(ctx, device=device))
    any_pad = bool((pad > 0).any())

    def sample(logits: torch.Tensor, counter: int) -> torch.Tensor:
        u = counter_uniforms(row_keys, counter) if row_keys is not None else None
        return sample_tokens(logits, temperature=settings.temperature, top_k=settings.top_k,
                             top_p=settings.top_p, uniforms=u)

    for i in range(horizon):
        c = lc + i  # column of the token generated at this step
        rows = None  # rows whose window slides at this step (recomputed in full)
        if i == 0:
            k_dep, v_dep = dep_cache.k[:, :, :lc], dep_cache.v[:, :, :lc]  # type: ignore[index]
            dep_mask = (cols[None, :lc] >= pad_n[:, None])[:, None, None, :] if any_pad else None
        else:
            sliding = (tm_n + i) > ctx
            if not bool(sliding.all()):  # cached step for all rows (sliding rows are overwritten below)
                xt = model.embed(tok1[:, c - 1:c], tok2[:, c - 1:c], st_n[:, c - 1:c])  # (N, 1, d)
                rot = rope_tables(mw.rotary, (c - 1 - pad_n)[:, None])  # (N, 1, 1, 1, hd/2)
                key_ok = (cols[None, :c] >= pad_n[:, None])[:, None, None, :] if any_pad else None  # (N, 1, 1, c)
                for j, block in enumerate(mw.blocks):
                    xt = block_fn(block, xt, rot, key_ok, caches[j], c - 1, False)
                h_last = mw.final_norm(xt)
                k_dep, v_dep = dep_cache.update(c - 1, *mw.cross_kv(h_last))
                dep_mask = key_ok
                s1_logits = mw.head_s1(h_last[:, 0])
            if bool(sliding.any()):  # the reference's computation: the last ctx tokens from position 0
                rows = sliding.nonzero().squeeze(-1)
                hw = model.embed(_gather_windows(tok1[rows], c, ctx), _gather_windows(tok2[rows], c, ctx),
                              _gather_windows(st_n[rows], c, ctx))
                for block in mw.blocks:
                    hw = block_fn(block, hw, window_rot, None, None, 0, True)
                context_w = mw.final_norm(hw)  # (R, ctx, d)
                s1_logits = s1_logits.index_put((rows,), mw.head_s1(context_w[:, -1]).to(s1_logits.dtype))
                kw, vw = mw.cross_kv(context_w)  # (R, 4, ctx, hd)
        s1_new = sample(s1_logits, 2 * i)
        if rows is None:
            s2_logits = mw.s2_logits(s1_new, k_dep, v_dep, dep_mask, h_last)
        else:
            s2_logits = torch.empty(n, mw.head_s2.weight.shape[0], device=device, dtype=torch.float32)
            keep = (~sliding).nonzero().squeeze(-1)
            if keep.numel():
                s2_logits[keep] = mw.s2_logits(s1_new[keep], k_dep[keep], v_dep[keep],
                                               None if dep_mask is None else dep_mask[keep], h_last[keep])
            s2_logits[rows] = mw.s2_logits(s1_new[rows], kw, vw, None, context_w[:, -1:])
        s2_new = sample(s2_logits, 2 * i + 1)
        tok1[:, c] = s1_new
        tok2[:, c] = s2_new

    # 4) decode once: each row's last min(T + H, ctx) tokens, left-padded to a common width
    total = (hist_len + horizon).clamp(max=ctx).repeat_interleave(rep, 0)  # (N,)
    width = int(total.max())
    dec_pad = width - total
    end = lc + horizon
    z = decode_ragged(tokenizer, tok1[:, end - width:end], tok2[:, end - width:end], dec_pad, tw, block_fn)
    return z[:, -horizon:, :].reshape(b, n_samples, horizon, z.shape[-1])
