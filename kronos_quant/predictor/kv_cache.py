"""The KV cache of one attention layer, for the fast predictor's prefill and decode steps.

Knows nothing about models or sampling.
"""

from __future__ import annotations

import torch

__all__ = ["LayerKVCache"]


class LayerKVCache:
    """Keys and values of one attention layer for N rows, up to ``max_len`` positions.

    k, v: (N, n_heads, max_len, head_dim), allocated (uninitialised) on the first ``update`` with
    the dtype of the incoming keys. ``update(start, k_new, v_new)`` writes positions
    [start, start + L_new) and returns views of positions [0, start + L_new); positions not yet
    written are never returned.
    """

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def update(self, start: int, k_new: torch.Tensor, v_new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k is None or self.v is None:
            n, h, _, hd = k_new.shape
            self.k = k_new.new_empty(n, h, self.max_len, hd)
            self.v = v_new.new_empty(n, h, self.max_len, hd)
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
