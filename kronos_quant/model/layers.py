"""Building blocks of the Kronos tokenizer and predictor.

Parameter and buffer names follow the published checkpoints exactly, so that a strict
``load_state_dict`` succeeds. The modules compute what the original does (the reference
forecasting path and training use them). The block's math is written once, here, as functions
over the sublayers: ``rms_norm``, ``swiglu`` (over ``LinearMap``s) and ``pre_norm_block``. The
fast predictor's kernel (``kronos_quant.predictor.kernels``) calls the same functions with frozen,
fused, prepacked copies of the weights, a permuted complex form of RoPE and KV caches -- a
model change is made here, plus in that kernel where it touches the attention's layout.

This module knows nothing about market data, tokens or sampling.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LinearMap",
    "Linear",
    "rms_norm",
    "swiglu",
    "pre_norm_block",
    "RMSNorm",
    "FeedForward",
    "RotaryPositionalEmbedding",
    "MultiHeadAttentionWithRoPE",
    "MultiHeadCrossAttentionWithRoPE",
    "TransformerBlock",
    "HierarchicalEmbedding",
    "FixedEmbedding",
    "TemporalEmbedding",
    "DependencyAwareLayer",
    "DualHead",
    "apply_rotary",
    "causal_mask",
]


class LinearMap(Protocol):
    """A linear map ``y = x W^T + b`` with the residual epilogue the block's math uses.

    ``Linear`` computes it unfused; the fast kernel's ``FrozenLinear`` fuses it into the product.
    """

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def add(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """``other + self(x)``: a residual connection (other shaped like the output)."""
        ...


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same checkpoints) that is also a ``LinearMap``."""

    def add(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return other + self(x)


_FUSED_NORM_ROWS = 16  # rows up to which F.rms_norm is the faster float32 route (see rms_norm)


def rms_norm(x: torch.Tensor, *, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """``x * rsqrt(mean(x^2) + eps) * weight`` over the last dim, computed in float32 and cast back
    (``weight=None``: no weight, for a caller that folded it elsewhere).

    Up to 16 rows of float32 run as one fused ``F.rms_norm`` (the same bits as the steps below on
    torch 2.13, and 1.3-1.5x faster on CPU for the few rows of a decode step, which calls it 17
    times; from 64 rows on it was 5-10x slower than the steps on a 2-core Xeon). Everything else
    takes the steps below; without autograd their temporaries are reused in place.
    """
    if x.dtype == torch.float32 and (weight is None or weight.dtype == torch.float32) \
            and x.numel() <= _FUSED_NORM_ROWS * x.shape[-1]:
        return F.rms_norm(x, (x.shape[-1],), weight, eps)
    xf = x.float()
    scale = xf.square().mean(-1, keepdim=True).add_(eps).rsqrt_()  # (..., 1)
    out = (xf * scale).type_as(x)
    if weight is None:
        return out
    if not torch.is_grad_enabled() and out.dtype == torch.promote_types(out.dtype, weight.dtype):
        return out.mul_(weight)
    return out * weight


def swiglu(h: torch.Tensor, *, w2: LinearMap, w1: Callable[[torch.Tensor], torch.Tensor] | None = None,
           w3: Callable[[torch.Tensor], torch.Tensor] | None = None,
           w13: Callable[[torch.Tensor], torch.Tensor] | None = None,
           residual: torch.Tensor | None = None) -> torch.Tensor:
    """The feed-forward sublayer: ``w2(silu(w1 h) * w3 h)``, plus ``residual`` when given. h (..., d) -> (..., d).

    ``w13``, instead of w1 and w3: one map whose output is w1's followed by w3's (one product for
    both; on CPU 15% faster on 3,200 rows than two products with fused epilogues).
    """
    if w13 is not None:
        a, b = w13(h).chunk(2, dim=-1)
    elif w1 is not None and w3 is not None:
        a, b = w1(h), w3(h)
    else:
        raise TypeError("swiglu needs w13, or both w1 and w3")
    gated = F.silu(a)
    gated = gated * b if torch.is_grad_enabled() else gated.mul_(b)  # no autograd: reuse silu's output
    return w2(gated) if residual is None else w2.add(gated, residual)


Sublayer = Callable[..., torch.Tensor]  # (h, *, residual) -> residual + sublayer(h)


def pre_norm_block(x: torch.Tensor, *, norm1: Callable[[torch.Tensor], torch.Tensor], attention: Sublayer,
                   norm2: Callable[[torch.Tensor], torch.Tensor], feed_forward: Sublayer) -> torch.Tensor:
    """The transformer block: ``x = x + attention(norm1(x))``, then ``x + feed_forward(norm2(x))``.

    The sublayers add the residual themselves (``attention(h, residual=x)``), so that a kernel can
    fuse the addition into its last product. x (R, L, d) -> (R, L', d), L' = L unless the attention
    returns only some query positions.
    """
    x = attention(norm1(x), residual=x)
    return feed_forward(norm2(x), residual=x)


class RMSNorm(nn.Module):
    """``rms_norm`` with a learned ``weight`` (d,)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, weight=self.weight, eps=self.eps)


class FeedForward(nn.Module):
    """SwiGLU without bias (``swiglu``), then dropout."""

    def __init__(self, d_model: int, ff_dim: int, ffn_dropout_p: float = 0.0) -> None:
        super().__init__()
        self.w1 = Linear(d_model, ff_dim, bias=False)
        self.w3 = Linear(d_model, ff_dim, bias=False)
        self.w2 = Linear(ff_dim, d_model, bias=False)
        self.ffn_dropout = nn.Dropout(ffn_dropout_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn_dropout(swiglu(x, w1=self.w1, w3=self.w3, w2=self.w2))


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (..., L, hd) by tables ``cos``/``sin`` broadcastable to it."""
    return x * cos + _rotate_half(x) * sin


class RotaryPositionalEmbedding(nn.Module):
    """RoPE with base 10000 over ``dim`` (= head_dim); buffer ``inv_freq`` is part of checkpoints."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq)

    def angles(self, positions: torch.Tensor) -> torch.Tensor:
        """Rotation angles ``t * inv_freq[j]`` of shape positions.shape + (dim/2,); pair j is (j, j + dim/2)."""
        return positions.to(self.inv_freq.dtype).unsqueeze(-1) * self.inv_freq

    def tables(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin of shape positions.shape + (dim,) for integer or float ``positions``."""
        freqs = self.angles(positions)  # (..., dim/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (..., dim)
        return emb.cos().to(dtype), emb.sin().to(dtype)

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The original behaviour: positions 0..Lq-1 taken from the *query* length, applied to both."""
        pos = torch.arange(q.shape[-2], device=q.device)
        cos, sin = self.tables(pos, q.dtype)  # (Lq, hd)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)


def causal_mask(key_padding_mask: torch.Tensor | None, q_len: int, k_len: int, device: torch.device) -> torch.Tensor:
    """Boolean mask (B or 1, 1, Lq, Lk), True = may attend; causal with queries aligned to the last keys.

    ``key_padding_mask`` (B, Lk) marks real tokens with True. A query may always attend to
    itself so that rows of padding never produce NaN.
    """
    qi = torch.arange(k_len - q_len, k_len, device=device)[:, None]
    kj = torch.arange(k_len, device=device)[None, :]
    mask = (kj <= qi)[None, None]  # (1, 1, Lq, Lk)
    if key_padding_mask is not None:
        mask = mask & (key_padding_mask[:, None, None, :].bool() | (kj == qi)[None, None])
    return mask


class MultiHeadAttentionWithRoPE(nn.Module):
    """Causal self-attention with rotary embeddings; q/k/v/out are ``Linear(d, d)`` with bias."""

    def __init__(self, d_model: int, n_heads: int, attn_dropout_p: float = 0.0, resid_dropout_p: float = 0.0) -> None:
        super().__init__()
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.rotary = RotaryPositionalEmbedding(self.head_dim)
        self.attn_dropout_p = attn_dropout_p
        self.resid_dropout = nn.Dropout(resid_dropout_p)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, seq_len, _ = x.shape
        return x.view(b, seq_len, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, L, hd)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        b, _, seq_len, _ = x.shape
        return self.resid_dropout(self.out_proj(x.transpose(1, 2).reshape(b, seq_len, self.d_model)))

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self._heads(self.q_proj(x)), self._heads(self.k_proj(x)), self._heads(self.v_proj(x))
        q, k = self.rotary(q, k)
        dropout_p = self.attn_dropout_p if self.training else 0.0
        if key_padding_mask is None:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        else:
            mask = causal_mask(key_padding_mask, x.shape[1], x.shape[1], x.device)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        return self._merge(out)


class MultiHeadCrossAttentionWithRoPE(MultiHeadAttentionWithRoPE):
    """Cross-attention of the dependency-aware layer.

    Quirks kept from the original: not causal in eval mode (causal in training mode), and the
    rotary positions come from the *query* length and are applied to both q and k.
    """

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,  # type: ignore[override]
                key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self._heads(self.q_proj(query)), self._heads(self.k_proj(key)), self._heads(self.v_proj(value))
        q, k = self.rotary(q, k)
        dropout_p = self.attn_dropout_p if self.training else 0.0
        mask = None
        if key_padding_mask is not None:
            mask = key_padding_mask[:, None, None, :].bool().expand(-1, self.n_heads, q.shape[2], -1)
            if self.training:
                mask = mask & causal_mask(None, q.shape[2], k.shape[2], q.device)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        else:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=self.training)
        return self._merge(out)


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x = x + attn(norm1(x)); x = x + ffn(norm2(x))``."""

    def __init__(self, d_model: int, n_heads: int, ff_dim: int = 1024, ffn_dropout_p: float = 0.0,
                 attn_dropout_p: float = 0.0, resid_dropout_p: float = 0.0) -> None:
        super().__init__()
        self.norm1 = RMSNorm(d_model)
        self.self_attn = MultiHeadAttentionWithRoPE(d_model, n_heads, attn_dropout_p, resid_dropout_p)
        self.norm2 = RMSNorm(d_model)
        self.ffn = FeedForward(d_model, ff_dim, ffn_dropout_p)

    def forward(self, x: torch.Tensor, *, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, L, d) -> (B, L, d); ``key_padding_mask`` (B, L) True = real token (None: all real)."""

        def attention(h: torch.Tensor, *, residual: torch.Tensor) -> torch.Tensor:
            return residual + self.self_attn(h, key_padding_mask=key_padding_mask)

        def feed_forward(h: torch.Tensor, *, residual: torch.Tensor) -> torch.Tensor:
            return residual + self.ffn(h)

        return pre_norm_block(x, norm1=self.norm1, attention=attention, norm2=self.norm2, feed_forward=feed_forward)


class HierarchicalEmbedding(nn.Module):
    """s1 and s2 token embeddings, each scaled by sqrt(d), concatenated and fused by a linear map."""

    def __init__(self, s1_bits: int, s2_bits: int, d_model: int = 256) -> None:
        super().__init__()
        self.s1_bits = s1_bits
        self.s2_bits = s2_bits
        self.d_model = d_model
        self.emb_s1 = nn.Embedding(2**s1_bits, d_model)
        self.emb_s2 = nn.Embedding(2**s2_bits, d_model)
        self.fusion_proj = nn.Linear(d_model * 2, d_model)

    def split_token(self, token_ids: torch.Tensor, s2_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
        return token_ids >> s2_bits, token_ids & ((1 << s2_bits) - 1)

    def forward(self, token_ids: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, torch.Tensor], *,
                fusion: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """ids (B, L) (or [s1, s2]) -> (B, L, d). ``fusion``: another copy of ``fusion_proj`` to apply
        (the fast predictor's prepacked one)."""
        if isinstance(token_ids, (list, tuple)):
            s1_ids, s2_ids = token_ids
        else:
            s1_ids, s2_ids = self.split_token(token_ids, self.s2_bits)
        s1_emb = self.emb_s1(s1_ids) * math.sqrt(self.d_model)
        s2_emb = self.emb_s2(s2_ids) * math.sqrt(self.d_model)
        return (fusion or self.fusion_proj)(torch.cat([s1_emb, s2_emb], dim=-1))


class FixedEmbedding(nn.Module):
    """A fixed sinusoidal table stored as the non-trainable ``emb.weight``."""

    def __init__(self, c_in: int, d_model: int) -> None:
        super().__init__()
        w = torch.zeros(c_in, d_model).float()
        position = torch.arange(0, c_in).float().unsqueeze(1)
        div_term = (torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model)).exp()
        w[:, 0::2] = torch.sin(position * div_term)
        w[:, 1::2] = torch.cos(position * div_term)
        self.emb = nn.Embedding(c_in, d_model)
        self.emb.weight = nn.Parameter(w, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.emb(x).detach()


class TemporalEmbedding(nn.Module):
    """Sum of minute (60), hour (24), weekday (7), day (32) and month (13) embeddings.

    Input (B, L, 5) in the order minute, hour, weekday, day, month.
    """

    def __init__(self, d_model: int, learn_pe: bool) -> None:
        super().__init__()
        embed = nn.Embedding if learn_pe else FixedEmbedding
        self.minute_embed = embed(60, d_model)
        self.hour_embed = embed(24, d_model)
        self.weekday_embed = embed(7, d_model)
        self.day_embed = embed(32, d_model)
        self.month_embed = embed(13, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.long()
        minute_x = self.minute_embed(x[:, :, 0])
        hour_x = self.hour_embed(x[:, :, 1])
        weekday_x = self.weekday_embed(x[:, :, 2])
        day_x = self.day_embed(x[:, :, 3])
        month_x = self.month_embed(x[:, :, 4])
        return hour_x + weekday_x + day_x + month_x + minute_x


class DependencyAwareLayer(nn.Module):
    """s2 conditioning: ``norm(hidden + cross_attn(query=emb_s1(s1), key=value=hidden))`` with 4 heads."""

    def __init__(self, d_model: int, n_heads: int = 4, attn_dropout_p: float = 0.0, resid_dropout: float = 0.0) -> None:
        super().__init__()
        self.cross_attn = MultiHeadCrossAttentionWithRoPE(d_model, n_heads, attn_dropout_p, resid_dropout)
        self.norm = RMSNorm(d_model)

    def forward(self, hidden_states: torch.Tensor, sibling_embed: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        attn_out = self.cross_attn(query=sibling_embed, key=hidden_states, value=hidden_states,
                                   key_padding_mask=key_padding_mask)
        return self.norm(hidden_states + attn_out)


class DualHead(nn.Module):
    """``proj_s1`` gives s1 logits from hidden states, ``proj_s2`` s2 logits from the dependency layer."""

    def __init__(self, s1_bits: int, s2_bits: int, d_model: int) -> None:
        super().__init__()
        self.vocab_s1 = 2**s1_bits
        self.vocab_s2 = 2**s2_bits
        self.proj_s1 = nn.Linear(d_model, self.vocab_s1)
        self.proj_s2 = nn.Linear(d_model, self.vocab_s2)

    def compute_loss(self, s1_logits: torch.Tensor, s2_logits: torch.Tensor, s1_targets: torch.Tensor,
                     s2_targets: torch.Tensor, padding_mask: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean cross-entropy of s1 and s2 over real tokens (padding_mask True = real)."""
        if padding_mask is not None:
            valid = padding_mask.reshape(-1).bool()
            ce_s1 = F.cross_entropy(s1_logits.reshape(-1, self.vocab_s1)[valid], s1_targets.reshape(-1)[valid])
            ce_s2 = F.cross_entropy(s2_logits.reshape(-1, self.vocab_s2)[valid], s2_targets.reshape(-1)[valid])
        else:
            ce_s1 = F.cross_entropy(s1_logits.reshape(-1, self.vocab_s1), s1_targets.reshape(-1))
            ce_s2 = F.cross_entropy(s2_logits.reshape(-1, self.vocab_s2), s2_targets.reshape(-1))
        return (ce_s1 + ce_s2) / 2, ce_s1, ce_s2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj_s1(x)

    def cond_forward(self, x2: torch.Tensor) -> torch.Tensor:
        return self.proj_s2(x2)
