"""Helpers shared by the benchmarks: model builders, a matmul FLOP-rate probe, peak memory."""

from __future__ import annotations

import platform
import resource
import time

import torch

KRONOS_SMALL = dict(s1_bits=10, s2_bits=10, n_layers=8, d_model=512, n_heads=8, ff_dim=1024, ffn_dropout_p=0.0,
                    attn_dropout_p=0.0, resid_dropout_p=0.0, token_dropout_p=0.0, learn_te=True)
TOKENIZER_BASE = dict(d_in=6, d_model=256, n_heads=4, ff_dim=512, n_enc_layers=4, n_dec_layers=4, ffn_dropout_p=0.0,
                      attn_dropout_p=0.0, resid_dropout_p=0.0, s1_bits=10, s2_bits=10, beta=0.05, gamma0=1.0,
                      gamma=1.1, zeta=0.05, group_size=4)


def random_small_models(seed: int = 0):
    """Kronos-small and Kronos-Tokenizer-base architectures with random weights."""
    from kronos_quant import Kronos, KronosTokenizer

    torch.manual_seed(seed)
    return Kronos(**KRONOS_SMALL).eval(), KronosTokenizer(**TOKENIZER_BASE).eval()


def matmul_gflops(m: int = 3200, k: int = 512, n: int = 1024, device: str = "cpu", repeats: int = 20) -> float:
    """Measured GFLOP/s of a plain fp32 matmul shaped like the prefill's FFN projection (8 x 400 tokens)."""
    a = torch.randn(m, k, device=device)
    b = torch.randn(k, n, device=device)
    for _ in range(3):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * m * k * n * repeats / (time.perf_counter() - t0) / 1e9


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, {gpu}, "
            f"torch {torch.__version__}, python {platform.python_version()}")
