"""Kronos: the autoregressive predictor over hierarchical (s1, s2) tokens.

Token + temporal embedding -> n_layers causal blocks -> RMSNorm -> s1 logits; the
dependency-aware layer conditions s2 on the chosen s1 token. Knows nothing about prices,
normalisation or sampling (see ``kronos_quant.predictor``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from kronos_quant.model.hub import HubMixin
from kronos_quant.model.layers import (
    DependencyAwareLayer,
    DualHead,
    HierarchicalEmbedding,
    RMSNorm,
    TemporalEmbedding,
    TransformerBlock,
)

__all__ = ["Kronos"]


class Kronos(HubMixin, nn.Module):
    """Constructor keywords are the keys of a published predictor's ``config.json``."""

    def __init__(self, s1_bits: int, s2_bits: int, n_layers: int, d_model: int, n_heads: int, ff_dim: int,
                 ffn_dropout_p: float, attn_dropout_p: float, resid_dropout_p: float, token_dropout_p: float,
                 learn_te: bool) -> None:
        super().__init__()
        self.config = dict(s1_bits=s1_bits, s2_bits=s2_bits, n_layers=n_layers, d_model=d_model, n_heads=n_heads,
                           ff_dim=ff_dim, ffn_dropout_p=ffn_dropout_p, attn_dropout_p=attn_dropout_p,
                           resid_dropout_p=resid_dropout_p, token_dropout_p=token_dropout_p, learn_te=learn_te)
        self.s1_bits = s1_bits
        self.s2_bits = s2_bits
        self.n_layers = n_layers
        self.d_model = d_model
        self.n_heads = n_heads
        self.s1_vocab_size = 2**s1_bits
        self.embedding = HierarchicalEmbedding(s1_bits, s2_bits, d_model)
        self.time_emb = TemporalEmbedding(d_model, learn_te)
        self.transformer = nn.ModuleList([
            TransformerBlock(d_model, n_heads, ff_dim, ffn_dropout_p, attn_dropout_p, resid_dropout_p)
            for _ in range(n_layers)
        ])
        self.norm = RMSNorm(d_model)
        self.dep_layer = DependencyAwareLayer(d_model)
        self.head = DualHead(s1_bits, s2_bits, d_model)
        self.token_drop = nn.Dropout(token_dropout_p)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.xavier_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            if module.weight.requires_grad:
                nn.init.normal_(module.weight, mean=0, std=self.d_model**-0.5)
        elif isinstance(module, RMSNorm):
            nn.init.ones_(module.weight)

    def embed(self, s1_ids: torch.Tensor, s2_ids: torch.Tensor, stamp: torch.Tensor | None, *,
              fusion: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """(B, L) ids and (B, L, 5) stamps -> (B, L, d) block inputs (token + temporal embedding).

        fusion: a copy of the embedding's fusion projection to use instead (the fast predictor's).
        """
        x = self.embedding([s1_ids, s2_ids], fusion=fusion)
        if stamp is not None:
            x = x + self.time_emb(stamp)
        return self.token_drop(x)

    def forward(self, s1_ids: torch.Tensor, s2_ids: torch.Tensor, stamp: torch.Tensor | None = None,
                padding_mask: torch.Tensor | None = None, use_teacher_forcing: bool = False,
                s1_targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (s1_logits (B, L, 2^s1_bits), s2_logits (B, L, 2^s2_bits)).

        With teacher forcing the s2 head is conditioned on ``s1_targets``; otherwise on s1 ids
        sampled from the model's own s1 distribution.
        """
        x = self.embed(s1_ids, s2_ids, stamp)
        for layer in self.transformer:
            x = layer(x, key_padding_mask=padding_mask)
        x = self.norm(x)
        s1_logits = self.head(x)
        if use_teacher_forcing:
            if s1_targets is None:
                raise ValueError("use_teacher_forcing=True needs s1_targets (B, L)")
            sibling_embed = self.embedding.emb_s1(s1_targets)
        else:
            probs = F.softmax(s1_logits.detach(), dim=-1)
            sampled = torch.multinomial(probs.view(-1, self.s1_vocab_size), 1).view(s1_ids.shape)
            sibling_embed = self.embedding.emb_s1(sampled)
        x2 = self.dep_layer(x, sibling_embed, key_padding_mask=padding_mask)
        return s1_logits, self.head.cond_forward(x2)

    def decode_s1(self, s1_ids: torch.Tensor, s2_ids: torch.Tensor, stamp: torch.Tensor | None = None,
                  padding_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (s1_logits (B, L, 2^s1_bits), context = normed hidden states (B, L, d))."""
        x = self.embed(s1_ids, s2_ids, stamp)
        for layer in self.transformer:
            x = layer(x, key_padding_mask=padding_mask)
        x = self.norm(x)
        return self.head(x), x

    def decode_s2(self, context: torch.Tensor, s1_ids: torch.Tensor,
                  padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """s2 logits (B, L, 2^s2_bits) conditioned on s1 ids (B, Lq), Lq = L or 1 (broadcast)."""
        sibling_embed = self.embedding.emb_s1(s1_ids)
        x2 = self.dep_layer(context, sibling_embed, key_padding_mask=padding_mask)
        return self.head.cond_forward(x2)
