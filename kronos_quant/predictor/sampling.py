"""Token sampling: temperature, top-k, top-p, and a counter-based random stream.

Every draw takes its uniform number from a hash of (row seed, counter), so a row's sample
path depends only on its own seed -- never on batch composition, micro-batching, device or
sharding. Knows nothing about models or prices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["filter_logits", "sample_tokens", "row_keys", "counter_uniforms"]

_MASK32 = 0xFFFFFFFF
_MULT = 0x45D9F3B  # < 2^27, so 32-bit x 27-bit products fit in int64 without overflow
_GOLDEN = 0x9E3779B9


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (int64 tensor holding values in [0, 2^32))."""
    x = (((x >> 16) ^ x) * _MULT) & _MASK32
    x = (((x >> 16) ^ x) * _MULT) & _MASK32
    return (x >> 16) ^ x


def row_keys(series_seeds: torch.Tensor, samples: int) -> torch.Tensor:
    """(B,) int64 seeds -> (B * samples,) 32-bit keys; row b * samples + s is sample s of series b."""
    seeds = series_seeds.to(torch.int64)
    lo = seeds & _MASK32
    hi = (seeds >> 32) & _MASK32
    base = _mix32(lo ^ _mix32(hi ^ 0x3C6EF372))  # (B,)
    s = torch.arange(samples, device=seeds.device, dtype=torch.int64)
    return _mix32(base[:, None] ^ _mix32((s[None, :] * _GOLDEN + 0x1B873593) & _MASK32)).reshape(-1)


def counter_uniforms(keys: torch.Tensor, counter: int) -> torch.Tensor:
    """(N,) float64 uniforms in (0, 1), a pure function of (key, counter)."""
    c = torch.full_like(keys, (counter * 2) & _MASK32)
    a = _mix32(keys ^ _mix32(c))
    b = _mix32(a ^ _mix32((c + 1) & _MASK32))
    bits = (a >> 5) * (1 << 26) + (b >> 6)  # 53 random bits
    return (bits.to(torch.float64) + 0.5) / float(1 << 53)


def filter_logits(logits: torch.Tensor, *, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Mask (to -inf) all but the top k logits, or (top_k = 0) all outside the top-p nucleus.

    The best token is always kept. logits (N, V) -> (N, V) float32.
    """
    logits = logits.float()
    if top_k > 0:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        return logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, sorted_idx = torch.sort(logits, descending=True, dim=-1)
        cum = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
        remove = cum > top_p
        remove[..., 1:] = remove[..., :-1].clone()
        remove[..., 0] = False
        mask = remove.scatter(-1, sorted_idx, remove)
        return logits.masked_fill(mask, float("-inf"))
    return logits


def sample_tokens(logits: torch.Tensor, *, temperature: float, top_k: int, top_p: float,
                  uniforms: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token per row of logits (N, V) -> (N,) int64.

    top_k = 1 is greedy (argmax). Otherwise the filtered, tempered distribution is sampled by
    inverse CDF with ``uniforms`` (N,) when given, else with torch.multinomial.
    """
    if top_k == 1:
        return logits.argmax(dim=-1)
    probs = F.softmax(filter_logits(logits / temperature, top_k=top_k, top_p=top_p), dim=-1)
    if uniforms is None:
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    cdf = torch.cumsum(probs.double(), dim=-1)  # (N, V)
    target = uniforms.to(cdf.device, torch.float64).unsqueeze(-1) * cdf[:, -1:]
    idx = torch.searchsorted(cdf, target).squeeze(-1)
    return idx.clamp_(max=logits.shape[-1] - 1)
