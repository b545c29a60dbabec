"""Bandwidth-bound CPU kernels for decode steps: few-row matrix products and one-query attention.

A decode step multiplies a handful of rows (N = series x samples, one token each) by every
weight matrix and reads every cached key and value once, so its speed is set by how fast the
weights and caches stream from memory, not by arithmetic. The general CPU kernels are tuned for
many rows; on the development machine (2-core AVX2 VM) oneDNN streamed the weights of an 8-row
product at 6-9 GB/s and torch's flash attention read one-query caches at ~9 GB/s, where the two
Numba kernels here reach 10-16 and ~13 GB/s (``benchmarks/RESULTS.md``).

The kernels sum in a different order than oneDNN/MKL, which changes float rounding (~1e-6
relative) and nothing else. They run only on CPU float32 tensors, when Numba imports, passes a
self-check, and ``KRONOS_QUANT_NUMBA`` asks for them (``auto``, the default: only on CPUs without
AVX-512, where they were measured faster; ``1``: always; ``0``: never); otherwise the callers
fall back to torch.
Numba's threads follow ``torch.get_num_threads()``, which they leave as the caller set it. Knows nothing
about models.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

import numpy as np
import torch

from kronos_quant.utils.switches import env_switch

__all__ = ["available", "setting", "compiling", "FewRowLinear", "one_query_attention", "MAX_ROWS"]

logger = logging.getLogger(__name__)

MAX_ROWS = 32  # above this a product is no longer bandwidth-bound: oneDNN's blocked kernels win
_FASTMATH = {"reassoc", "contract", "nsz"}  # reorder sums (to vectorise them); NaN and inf keep IEEE meaning
_ROW_TILE = 8  # rows whose products share one pass over a weight row


def _compile() -> tuple[Any, Any]:
    """The two Numba kernels (compiled on first call, cached on disk by Numba)."""
    import numba
    from numba import prange

    jit = functools.partial(numba.njit, parallel=True, fastmath=_FASTMATH, nogil=True, cache=True,
                            boundscheck=False)

    @jit
    def rows_times_weight(x, w, bias, residual, rows, has_bias, has_residual, out):  # pragma: no cover - JIT
        # x (R8, K) with R8 a multiple of 8 (rows >= `rows` are zero padding), w (N, K), out (rows, N)
        n_out, k_in = w.shape
        for n in prange(n_out):
            b = bias[n] if has_bias else np.float32(0.0)
            for r in range(0, x.shape[0], 8):
                a0 = np.float32(0.0)
                a1 = np.float32(0.0)
                a2 = np.float32(0.0)
                a3 = np.float32(0.0)
                a4 = np.float32(0.0)
                a5 = np.float32(0.0)
                a6 = np.float32(0.0)
                a7 = np.float32(0.0)
                for k in range(k_in):
                    wv = w[n, k]
                    a0 += x[r, k] * wv
                    a1 += x[r + 1, k] * wv
                    a2 += x[r + 2, k] * wv
                    a3 += x[r + 3, k] * wv
                    a4 += x[r + 4, k] * wv
                    a5 += x[r + 5, k] * wv
                    a6 += x[r + 6, k] * wv
                    a7 += x[r + 7, k] * wv
                acc = (a0, a1, a2, a3, a4, a5, a6, a7)
                for i in range(8):
                    if r + i < rows:
                        v = acc[i] + b
                        if has_residual:
                            v += residual[r + i, n]
                        out[r + i, n] = v

    @jit
    def attend_one_query(q, k, v, length, mask, has_mask, scale, out):  # pragma: no cover - JIT
        # q (R, H, hd); k, v (R, H, L_max, hd), positions [0, length) valid; mask (R or 1, length) bool
        n_rows, n_heads, _, hd = k.shape
        for job in prange(n_rows * n_heads):
            r = job // n_heads
            h = job % n_heads
            mr = r if mask.shape[0] > 1 else 0
            score = np.empty(length, np.float32)
            top = np.float32(-np.inf)
            for t in range(length):
                if has_mask and not mask[mr, t]:
                    continue
                s = np.float32(0.0)
                for d in range(hd):
                    s += q[r, h, d] * k[r, h, t, d]
                s *= scale
                score[t] = s
                if s > top:
                    top = s
            total = np.float32(0.0)
            for t in range(length):
                if has_mask and not mask[mr, t]:
                    continue
                e = np.exp(score[t] - top)
                score[t] = e
                total += e
            acc = np.zeros(hd, np.float32)
            for t in range(length):
                if has_mask and not mask[mr, t]:
                    continue
                p = score[t]
                for d in range(hd):
                    acc[d] += p * v[r, h, t, d]
            inv = np.float32(1.0) / total
            for d in range(hd):
                out[r, h, d] = acc[d] * inv

    return rows_times_weight, attend_one_query


def setting() -> str:
    """``KRONOS_QUANT_NUMBA`` read as ``"off"``, ``"on"`` or ``"auto"`` (``utils.switches.env_switch``)."""
    return env_switch("KRONOS_QUANT_NUMBA")


def _wanted() -> bool:
    """``setting()``: ``off``, ``on``, or ``auto``: on unless the CPU has AVX-512.

    The kernels were measured in a full decode step against torch's ops on two machines: on a
    2-core AVX2 AMD EPYC they were 3-8% faster; on a 2-core AVX-512 Xeon oneDNN's few-row products
    and torch's attention streamed faster (11.3 against 13.8 ms per step of Kronos-small over 8
    rows), so ``auto`` leaves them off where torch dispatches AVX-512 kernels.
    """
    mode = setting()
    if mode != "auto":
        return mode == "on"
    return not torch.backends.cpu.get_cpu_capability().startswith("AVX512")


@functools.cache
def _kernels() -> tuple[Any, Any] | None:
    try:
        kernels = _compile()
    except Exception as err:  # noqa: BLE001 -- Numba missing or unusable: the callers use torch
        logger.debug("Numba decode kernels unavailable (%s); using torch", err)
        return None
    return kernels


@functools.cache
def available() -> bool:
    """Whether the kernels are on (``_wanted``: ``KRONOS_QUANT_NUMBA`` and the CPU), Numba imports, and they
    agree with torch. Cached: after changing the variable, call ``available.cache_clear()``."""
    if not _wanted() or _kernels() is None:
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        x, w, b = torch.randn(3, 16, generator=gen), torch.randn(24, 16, generator=gen), torch.randn(24, generator=gen)
        res = torch.randn(3, 24, generator=gen)
        q, k, v = (torch.randn(2, 3, n, 8, generator=gen) for n in (1, 5, 5))
        mask = torch.tensor([[True, False, True, True, True]])[:, None, None, :]
        checks = [(_linear(x, w.numpy(), b.numpy(), True, res), res + torch.nn.functional.linear(x, w, b)),
                  (_attention(q, k, v, mask), torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask))]
        ok = all(got is not None and bool(torch.allclose(got, want, rtol=1e-4, atol=1e-5)) for got, want in checks)
    except Exception as err:  # noqa: BLE001 -- any failure means: use torch
        logger.debug("Numba decode kernels failed their self-check (%s); using torch", err)
        return False
    if not ok:
        logger.warning("Numba decode kernels disagree with torch on this machine; using torch")
    return ok


_STATE = threading.local()  # per calling thread (Numba's thread count is thread-local): the count last set


def compiling() -> bool:
    """Inside ``torch.compile``'s tracing: Numba calls cannot be traced, so the callers use torch's ops."""
    check = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(check()) if check is not None else False


def _threads() -> None:
    """Numba's thread count follows torch's, and torch's is left as it was.

    Numba's OpenMP threading layer sets the calling thread's OpenMP thread count, which is also
    torch's, to ``NUMBA_NUM_THREADS`` when it starts: without the restore below, a caller's
    ``torch.set_num_threads(1)`` would silently become one thread per core after the first decode step.
    """
    want = torch.get_num_threads()
    if getattr(_STATE, "threads", None) != want:
        import numba

        numba.set_num_threads(max(1, min(want, numba.config.NUMBA_NUM_THREADS)))
        if torch.get_num_threads() != want:
            torch.set_num_threads(want)
        _STATE.threads = want


class FewRowLinear:
    """``residual + x @ weight^T + bias`` for at most ``MAX_ROWS`` rows, over frozen CPU float32 weights.

    weight: (N, K), bias: (N,) or None; both are kept as views (no copy). Calling returns None
    when the call is not eligible (too many rows, not CPU float32, kernels off): compute it with torch.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.weight = weight.detach().contiguous()
        self.bias = None if bias is None else bias.detach().contiguous()
        self._w = self.weight.numpy()
        self._b = self.bias.numpy() if self.bias is not None else np.zeros(1, np.float32)

    @staticmethod
    def eligible(weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
        """Whether weights of this kind can be wrapped (CPU float32)."""
        return weight.device.type == "cpu" and weight.dtype == torch.float32 and (
            bias is None or (bias.device.type == "cpu" and bias.dtype == torch.float32))

    def __call__(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor | None:
        """x (..., K) -> (..., N); residual shaped like the output. None: not eligible, use torch."""
        k_in = x.shape[-1]
        rows = x.numel() // k_in if k_in else 0
        if not 0 < rows <= MAX_ROWS or x.dtype != torch.float32 or x.device.type != "cpu" or x.requires_grad \
                or (residual is not None and residual.dtype != torch.float32) or compiling() or not available():
            return None
        return _linear(x, self._w, self._b, self.bias is not None, residual)


_NO_ROWS = np.zeros((1, 1), np.float32)


def _linear(x: torch.Tensor, w: np.ndarray, b: np.ndarray, has_bias: bool,
            residual: torch.Tensor | None) -> torch.Tensor:
    kernel = _kernels()[0]  # type: ignore[index]
    k_in, n_out = x.shape[-1], w.shape[0]
    rows = x.numel() // k_in
    if rows % _ROW_TILE == 0 and x.is_contiguous():
        xs = x.view(rows, k_in)
    else:
        xs = x.new_zeros(-(-rows // _ROW_TILE) * _ROW_TILE, k_in)
        xs[:rows] = x.reshape(rows, k_in)
    out = x.new_empty(rows, n_out)
    res = _NO_ROWS if residual is None else residual.reshape(rows, n_out).contiguous().numpy()
    _threads()
    kernel(xs.numpy(), w, b, res, rows, has_bias, residual is not None, out.numpy())
    return out.view(*x.shape[:-1], n_out)


def _cache_buffer(t: torch.Tensor) -> torch.Tensor | None:
    """(R, H, L, hd) that is contiguous or the first L positions of a contiguous (R, H, L_max, hd)
    buffer (a ``LayerKVCache`` view) -> that buffer, else None."""
    r, h, _, hd = t.shape
    if t.stride(3) != 1 or t.stride(2) != hd or t.stride(1) % hd or t.stride(0) != h * t.stride(1):
        return None
    return torch.as_strided(t, (r, h, t.stride(1) // hd, hd), t.stride(), t.storage_offset())


def one_query_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        mask: torch.Tensor | None = None) -> torch.Tensor | None:
    """``scaled_dot_product_attention`` for one query per row and head, or None (use torch).

    q: (R, H, 1, hd); k, v: (R, H, L, hd), contiguous or prefix views of a cache buffer; mask:
    bool broadcastable to (R, 1, 1, L), True = may attend, or None. Returns (R, H, 1, hd).
    """
    if q.dim() != 4 or q.shape[2] != 1 or any(t.dtype != torch.float32 or t.device.type != "cpu" or t.requires_grad
                                                  for t in (q, k, v)) or compiling() or not available():
        return None
    if mask is not None and (mask.dtype != torch.bool or mask.dim() != 4 or mask.shape[1:3] != (1, 1)
                             or mask.shape[0] not in (1, q.shape[0]) or mask.shape[3] != k.shape[2]):
        return None
    return _attention(q, k, v, mask)


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
    kernel = _kernels()[1]  # type: ignore[index]
    kb, vb = _cache_buffer(k), _cache_buffer(v)
    if kb is None or vb is None or k.shape != v.shape:
        return None
    r, h, length, hd = k.shape
    qs = q[:, :, 0].contiguous()  # (R, H, hd)
    m = mask[:, 0, 0].contiguous() if mask is not None else torch.ones(1, 1, dtype=torch.bool)
    out = q.new_empty(r, h, hd)
    _threads()
    kernel(qs.numpy(), kb.numpy(), vb.numpy(), length, m.numpy(), mask is not None, np.float32(hd ** -0.5),
           out.numpy())
    return out[:, :, None]
