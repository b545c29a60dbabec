"""Binary spherical quantization (BSQ) of the tokenizer's latent codes.

Codes are L2-normalised, binarised to +-1/sqrt(codebook_dim), and read as integer indices
least-significant bit first. The training loss adds a commitment term and an entropy term over
groups of ``group_size`` bits. Knows nothing about prices or the predictor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BinarySphericalQuantizer", "BSQuantizer", "bits_to_indices", "indices_to_bits"]


def bits_to_indices(codes: torch.Tensor) -> torch.Tensor:
    """(..., n_bits) codes -> (...) int64 indices, bit j = (code_j >= 0), LSB first."""
    bits = (codes >= 0).to(torch.long)
    weights = 2 ** torch.arange(codes.shape[-1], dtype=torch.long, device=codes.device)
    return (bits * weights).sum(-1)


def indices_to_bits(indices: torch.Tensor, n_bits: int) -> torch.Tensor:
    """(...) int64 indices -> (..., n_bits) float +-1 (LSB first)."""
    mask = 2 ** torch.arange(n_bits, device=indices.device, dtype=torch.long)
    bits = (indices.long().unsqueeze(-1) & mask) != 0
    return bits.float() * 2 - 1


class BinarySphericalQuantizer(nn.Module):
    """Sign quantizer with the BSQ commitment and soft-entropy penalties.

    Buffers ``basis`` and ``group_basis`` (powers of two, most significant first) are part of
    the published checkpoints; indices themselves are computed LSB first by ``bits_to_indices``.
    """

    def __init__(self, embed_dim: int, beta: float, gamma0: float, gamma: float, zeta: float,
                 group_size: int = 9, inv_temperature: float = 1.0) -> None:
        super().__init__()
        if embed_dim % group_size != 0:
            raise ValueError(f"codebook_dim {embed_dim} must be divisible by group_size {group_size}")
        self.embed_dim = embed_dim
        self.beta = beta
        self.gamma0 = gamma0
        self.gamma = gamma
        self.zeta = zeta
        self.group_size = group_size
        self.num_groups = embed_dim // group_size
        self.inv_temperature = inv_temperature
        self.register_buffer("basis", 2 ** torch.arange(embed_dim - 1, -1, -1))
        self.register_buffer("group_basis", 2 ** torch.arange(group_size - 1, -1, -1))
        codes = torch.arange(2**group_size)
        group_codebook = ((codes.unsqueeze(-1) & self.group_basis) != 0).float() * 2 - 1  # (2^g, g)
        self.register_buffer("group_codebook", group_codebook, persistent=False)

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """+-1 by sign (straight-through gradient)."""
        zhat = torch.where(z > 0, torch.ones_like(z), -torch.ones_like(z))
        return z + (zhat - z).detach()

    def forward(self, z: torch.Tensor, collect_metrics: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """z (..., embed_dim), L2-normalised -> (zq scaled by 1/sqrt(dim), loss, metrics)."""
        zq = self.quantize(z) * (1.0 / self.embed_dim**0.5)
        if not collect_metrics:
            return zq, zq.new_zeros(()), {}
        per_sample_entropy, codebook_entropy = self.soft_entropy(z)
        entropy_penalty = self.gamma0 * per_sample_entropy - self.gamma * codebook_entropy
        commit_loss = self.beta * torch.mean(((zq.detach() - z) ** 2).sum(dim=-1))
        loss = commit_loss + self.zeta * entropy_penalty / self.inv_temperature
        return zq, loss, {"commit_loss": commit_loss.detach(), "per_sample_entropy": per_sample_entropy.detach(),
                          "codebook_entropy": codebook_entropy.detach()}

    def soft_entropy(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample entropy (analytical, per bit) and codebook entropy (per group of bits)."""
        scale = self.embed_dim**0.5
        # per-sample: each bit is +1 with probability sigmoid(4 z / sqrt(dim)) (soft assignment)
        p = torch.sigmoid(-4 * z / scale * self.inv_temperature)
        prob_bits = torch.stack([p, 1 - p], dim=-1)
        per_sample = _entropy(prob_bits).sum(dim=-1).mean()
        # codebook: soft assignment of each group of bits to the 2^g group codes, averaged over samples
        groups = z.reshape(*z.shape[:-1], self.num_groups, self.group_size)
        logits = 2 * torch.einsum("...gc,dc->...gd", groups, self.group_codebook / scale) * self.inv_temperature
        avg_prob = logits.softmax(dim=-1).reshape(-1, self.num_groups, 2**self.group_size).mean(dim=0)
        codebook = _entropy(avg_prob).sum()
        return per_sample, codebook


def _entropy(prob: torch.Tensor) -> torch.Tensor:
    return -(prob * torch.log(prob.clamp_min(1e-8))).sum(dim=-1)


class BSQuantizer(nn.Module):
    """L2-normalise, quantize with BSQ, and return indices (one index, or (s1, s2) in half mode)."""

    def __init__(self, s1_bits: int, s2_bits: int, beta: float, gamma0: float, gamma: float, zeta: float,
                 group_size: int) -> None:
        super().__init__()
        self.codebook_dim = s1_bits + s2_bits
        self.s1_bits = s1_bits
        self.s2_bits = s2_bits
        self.bsq = BinarySphericalQuantizer(self.codebook_dim, beta, gamma0, gamma, zeta, group_size=group_size)

    def bits_to_indices(self, bits: torch.Tensor) -> torch.Tensor:
        return bits_to_indices(bits)

    def forward(self, z: torch.Tensor, half: bool = False, collect_metrics: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | list[torch.Tensor]]:
        z = F.normalize(z, dim=-1)
        quantized, bsq_loss, _ = self.bsq(z, collect_metrics=collect_metrics)
        if half:
            z_indices: torch.Tensor | list[torch.Tensor] = [
                bits_to_indices(quantized[..., : self.s1_bits]),
                bits_to_indices(quantized[..., self.s1_bits:]),
            ]
        else:
            z_indices = bits_to_indices(quantized)
        return bsq_loss, quantized, z_indices
