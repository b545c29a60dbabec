"""KronosTokenizer: OHLCV rows -> hierarchical (s1, s2) tokens and back.

Encoder: ``embed`` -> (n_enc_layers - 1) causal blocks -> ``quant_embed`` -> BSQ.
Decoder: bits -> ``post_quant_embed`` -> (n_dec_layers - 1) causal blocks -> ``head``.
Knows nothing about normalisation, prices or the predictor.
"""

from __future__ import annotations

import torch
from torch import nn

from kronos_quant.model.hub import HubMixin
from kronos_quant.model.layers import RMSNorm, TransformerBlock
from kronos_quant.model.quantizer import BSQuantizer, indices_to_bits

__all__ = ["KronosTokenizer"]


class KronosTokenizer(HubMixin, nn.Module):
    """Constructor keywords are the keys of a published tokenizer's ``config.json``."""

    def __init__(self, d_in: int, d_model: int, n_heads: int, ff_dim: int, n_enc_layers: int, n_dec_layers: int,
                 ffn_dropout_p: float, attn_dropout_p: float, resid_dropout_p: float, s1_bits: int, s2_bits: int,
                 beta: float, gamma0: float, gamma: float, zeta: float, group_size: int) -> None:
        super().__init__()
        self.config = dict(d_in=d_in, d_model=d_model, n_heads=n_heads, ff_dim=ff_dim, n_enc_layers=n_enc_layers,
                           n_dec_layers=n_dec_layers, ffn_dropout_p=ffn_dropout_p, attn_dropout_p=attn_dropout_p,
                           resid_dropout_p=resid_dropout_p, s1_bits=s1_bits, s2_bits=s2_bits, beta=beta,
                           gamma0=gamma0, gamma=gamma, zeta=zeta, group_size=group_size)
        self.d_in = d_in
        self.d_model = d_model
        self.s1_bits = s1_bits
        self.s2_bits = s2_bits
        self.codebook_dim = s1_bits + s2_bits
        self.embed = nn.Linear(d_in, d_model)
        self.head = nn.Linear(d_model, d_in)
        block = dict(d_model=d_model, n_heads=n_heads, ff_dim=ff_dim, ffn_dropout_p=ffn_dropout_p,
                     attn_dropout_p=attn_dropout_p, resid_dropout_p=resid_dropout_p)
        self.encoder = nn.ModuleList([TransformerBlock(**block) for _ in range(n_enc_layers - 1)])
        self.decoder = nn.ModuleList([TransformerBlock(**block) for _ in range(n_dec_layers - 1)])
        self.quant_embed = nn.Linear(d_model, self.codebook_dim)
        self.post_quant_embed_pre = nn.Linear(s1_bits, d_model)
        self.post_quant_embed = nn.Linear(self.codebook_dim, d_model)
        self.tokenizer = BSQuantizer(s1_bits, s2_bits, beta, gamma0, gamma, zeta, group_size)
        self.apply(_init_weights)

    # -- training ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None
                ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, L, d_in) -> ((recon from s1 only, recon from s1+s2) each (B, L, d_in), bsq_loss,
        quantized (B, L, codebook_dim), indices (B, L))."""
        z = self.embed(x)
        for layer in self.encoder:
            z = layer(z, key_padding_mask=padding_mask)
        z = self.quant_embed(z)
        bsq_loss, quantized, z_indices = self.tokenizer(z)
        z_pre = self.post_quant_embed_pre(quantized[:, :, : self.s1_bits])
        z = self.post_quant_embed(quantized)
        for layer in self.decoder:
            z_pre = layer(z_pre, key_padding_mask=padding_mask)
        z_pre = self.head(z_pre)
        for layer in self.decoder:
            z = layer(z, key_padding_mask=padding_mask)
        z = self.head(z)
        return (z_pre, z), bsq_loss, quantized, z_indices  # type: ignore[return-value]

    # -- inference ---------------------------------------------------------------------------
    def indices_to_bits(self, x: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, torch.Tensor],
                        half: bool = False) -> torch.Tensor:
        """Indices -> scaled codes (B, L, codebook_dim) of +-1/sqrt(codebook_dim)."""
        if half:
            bits = torch.cat([indices_to_bits(x[0], self.s1_bits), indices_to_bits(x[1], self.s2_bits)], dim=-1)
        else:
            bits = indices_to_bits(x, self.codebook_dim)  # type: ignore[arg-type]
        return bits * (1.0 / self.codebook_dim**0.5)

    def encode(self, x: torch.Tensor, half: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """x (B, L, d_in) normalised -> indices (B, L), or [s1 (B, L), s2 (B, L)] with half=True."""
        z = self.embed(x)
        for layer in self.encoder:
            z = layer(z)
        z = self.quant_embed(z)
        _, _, z_indices = self.tokenizer(z, half=half, collect_metrics=False)
        return z_indices

    def decode(self, x: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, torch.Tensor],
               half: bool = False) -> torch.Tensor:
        """Indices (or [s1, s2] with half=True), each (B, L) -> reconstruction (B, L, d_in)."""
        z = self.post_quant_embed(self.indices_to_bits(x, half))
        for layer in self.decoder:
            z = layer(z)
        return self.head(z)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.xavier_normal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, RMSNorm):
        nn.init.ones_(module.weight)
