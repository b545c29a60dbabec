"""Training objectives of the Kronos tokenizer and predictor.

Tokenizer: reconstruction MSE from the s1 bits alone and from s1+s2, plus the BSQ commitment
and entropy loss returned by the tokenizer's forward -- ``(mse_s1 + mse_full + bsq) / 2`` as in
the original Kronos training. Predictor: cross-entropy of the next s1 and s2 tokens (inputs
tokens [0, L-1), targets [1, L)) with the dependency-aware head teacher-forced on the true
next s1 token. Both accept a ``scored`` mask (B, L) so that validation counts only chosen rows.
Knows nothing about data, optimisers or files.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["tokenizer_loss", "predictor_loss", "LossOutput"]

LossOutput = tuple[torch.Tensor, dict[str, float], int]  # (loss to minimise, parts, n counted)


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, scored: torch.Tensor | None) -> torch.Tensor:
    err = (pred.float() - target.float()) ** 2  # (B, L, 6)
    if scored is None:
        return err.mean()
    weight = scored.to(err.dtype)[..., None].expand_as(err)
    return (err * weight).sum() / weight.sum().clamp_min(1.0)


def tokenizer_loss(tokenizer: nn.Module, x: torch.Tensor, scored: torch.Tensor | None = None) -> LossOutput:
    """x (B, L, 6) normalised windows. Returns the training loss (reconstruction + BSQ) and parts.

    ``parts["recon"]`` = (mse_s1 + mse_full) / 2 over scored rows is the validation metric.
    """
    (recon_s1, recon_full), bsq_loss, _, _ = tokenizer(x)
    mse_s1 = _masked_mse(recon_s1, x, scored)
    mse_full = _masked_mse(recon_full, x, scored)
    loss = (mse_s1 + mse_full + bsq_loss.float()) / 2
    n = int(x.shape[0] * x.shape[1]) if scored is None else int(scored.sum())
    parts = {"mse_s1": float(mse_s1.detach()), "mse_full": float(mse_full.detach()),
             "bsq": float(bsq_loss.detach()), "recon": float(((mse_s1 + mse_full) / 2).detach())}
    return loss, parts, n


def predictor_loss(model: nn.Module, head: nn.Module, s1: torch.Tensor, s2: torch.Tensor, stamps: torch.Tensor,
                   scored: torch.Tensor | None = None) -> LossOutput:
    """s1, s2 (B, L) token ids, stamps (B, L, 5). Next-token cross-entropy (mean of s1 and s2).

    ``model`` may be wrapped (DDP); ``head`` is the unwrapped ``Kronos.head`` with ``compute_loss``.
    ``scored`` (B, L) marks rows whose token counts as a target.
    """
    s1_in, s2_in, s1_out, s2_out = s1[:, :-1], s2[:, :-1], s1[:, 1:], s2[:, 1:]
    s1_logits, s2_logits = model(s1_in, s2_in, stamps[:, :-1], use_teacher_forcing=True, s1_targets=s1_out)
    mask = None if scored is None else scored[:, 1:]
    loss, ce_s1, ce_s2 = head.compute_loss(s1_logits.float(), s2_logits.float(), s1_out, s2_out, padding_mask=mask)
    n = int(s1_out.numel()) if mask is None else int(mask.sum())
    return loss, {"ce_s1": float(ce_s1.detach()), "ce_s2": float(ce_s2.detach()), "ce": float(loss.detach())}, n

