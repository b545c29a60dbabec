"""Building blocks of the Kronos tokenizer and predictor.

Parameter and buffer names follow the published checkpoints exactly, so that a strict
``load_state_dict`` succeeds. The modules compute what the original does (the reference
forecasting path and training use them); the fast predictor runs the same arithmetic from
frozen, fused copies of these weights (``kronos_quant.predictor.kernels``), with its own KV
caches (``LayerKVCache``).

This module knows nothing about market data, tokens or sampling.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
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
    "LayerKVCache",
    "apply_rotary",
    "causal_mask",
]


class RMSNorm(nn.Module):
    """``x * rsqrt(mean(x^2) + eps) * weight``, computed in float32 and cast back."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return out.type_as(x) * self.weight


class FeedForward(nn.Module):
    """SwiGLU without bias: ``w2(silu(w1 x) * w3 x)``."""

    def __init__(self, d_model: int, ff_dim: int, ffn_dropout_p: float = 0.0) -> None:
        super().__init__()
        self.w1 = nn.Linear(d_model, ff_dim, bias=False)
        self.w3 = nn.Linear(d_model, ff_dim, bias=False)
        self.w2 = nn.Linear(ff_dim, d_model, bias=False)
        self.ffn_dropout = nn.Dropout(ffn_dropout_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn_dropout(self.w2(F.silu(self.w1(x)) * self.w3(x)))


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

    def tables(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin of shape positions.shape + (dim,) for integer or float ``positions``."""
        t = positions.to(self.inv_freq.dtype)
        freqs = t.unsqueeze(-1) * self.inv_freq  # (..., dim/2)
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


class LayerKVCache:
    """Keys and values of one attention layer for N rows, up to ``max_len`` positions.

    k, v: (N, n_heads, max_len, head_dim), allocated on the first ``update`` with the dtype of
    the incoming keys. ``update(start, k_new, v_new)`` writes positions [start, start + L_new)
    and returns views of positions [0, start + L_new).
    """

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def update(self, start: int, k_new: torch.Tensor, v_new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k is None or self.v is None:
            n, h, _, hd = k_new.shape
            self.k = k_new.new_zeros(n, h, self.max_len, hd)
            self.v = v_new.new_zeros(n, h, self.max_len, hd)
        end = start + k_new.shape[-2]
        self.k[:, :, start:end] = k_new
        self.v[:, :, start:end] = v_new
        return self.k[:, :, :end], self.v[:, :, :end]

    def repeat_rows(self, repeats: int) -> LayerKVCache:
        """A cache whose row i*repeats + j copies row i (fan out one prefill to ``repeats`` samples)."""
        if repeats == 1:
            return self
        out = LayerKVCache(self.max_len)
        if self.k is not None and self.v is not None:
            out.k = self.k.repeat_interleave(repeats, dim=0)
            out.v = self.v.repeat_interleave(repeats, dim=0)
        return out


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

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.self_attn(self.norm1(x), key_padding_mask=key_padding_mask)
        return x + self.ffn(self.norm2(x))


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

    def forward(self, token_ids: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        if isinstance(token_ids, (list, tuple)):
            s1_ids, s2_ids = token_ids
        else:
            s1_ids, s2_ids = self.split_token(token_ids, self.s2_bits)
        s1_emb = self.emb_s1(s1_ids) * math.sqrt(self.d_model)
        s2_emb = self.emb_s2(s2_ids) * math.sqrt(self.d_model)
        return self.fusion_proj(torch.cat([s1_emb, s2_emb], dim=-1))


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
