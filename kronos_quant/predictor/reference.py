"""The reference forecasting path: the spec's procedure step by step, no caching.

At every generated bar the whole window (at most ``max_context`` tokens) is recomputed, and
the context is repeated once per sample, as the original implementation does. It is kept for
conformance tests and as the benchmark baseline; the fast path lives in ``fast.py``.
"""

from __future__ import annotations

import torch

from kronos_quant.model import Kronos, KronosTokenizer
from kronos_quant.predictor.sampling import counter_uniforms, sample_tokens

__all__ = ["reference_generate"]


@torch.inference_mode()
def reference_generate(tokenizer: KronosTokenizer, model: Kronos, x: torch.Tensor, x_stamp: torch.Tensor,
                       y_stamp: torch.Tensor, *, max_context: int, horizon: int, temperature: float = 1.0,
                       top_k: int = 0, top_p: float = 0.9, samples: int = 1,
                       row_keys: torch.Tensor | None = None) -> torch.Tensor:
    """Sample paths in normalised units.

    x: (B, T, 6) normalised and clipped; x_stamp: (B, T, 5); y_stamp: (B, H, 5).
    row_keys: (B * samples,) keys of the counter-based stream (None = torch.multinomial).
    Returns (B, samples, H, 6).
    """
    b, t_len, _ = x.shape
    x = x.repeat_interleave(samples, dim=0)  # (N, T, 6), N = B * S
    x_stamp = x_stamp.repeat_interleave(samples, dim=0)
    y_stamp = y_stamp.repeat_interleave(samples, dim=0)
    s1_hist, s2_hist = tokenizer.encode(x, half=True)  # (N, T) each
    full_stamp = torch.cat([x_stamp, y_stamp], dim=1)  # (N, T + H, 5)
    s1_seq, s2_seq = s1_hist, s2_hist
    for i in range(horizon):
        cur = t_len + i
        start = max(0, cur - max_context)
        s1_logits, context = model.decode_s1(s1_seq[:, start:cur], s2_seq[:, start:cur], full_stamp[:, start:cur])
        u1 = counter_uniforms(row_keys, 2 * i) if row_keys is not None else None
        s1_new = sample_tokens(s1_logits[:, -1, :], temperature=temperature, top_k=top_k, top_p=top_p, uniforms=u1)
        s2_logits = model.decode_s2(context, s1_new[:, None])
        u2 = counter_uniforms(row_keys, 2 * i + 1) if row_keys is not None else None
        s2_new = sample_tokens(s2_logits[:, -1, :], temperature=temperature, top_k=top_k, top_p=top_p, uniforms=u2)
        s1_seq = torch.cat([s1_seq, s1_new[:, None]], dim=1)
        s2_seq = torch.cat([s2_seq, s2_new[:, None]], dim=1)
    total = t_len + horizon
    start = max(0, total - max_context)
    z = tokenizer.decode([s1_seq[:, start:total], s2_seq[:, start:total]], half=True)  # (N, W, 6)
    return z[:, -horizon:, :].reshape(b, samples, horizon, z.shape[-1])
