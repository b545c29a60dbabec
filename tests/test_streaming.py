"""The decode steps' bandwidth-bound CPU kernels (``predictor.streaming``) against torch's own ops."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kronos_quant.predictor import kernels as K
from kronos_quant.predictor import streaming as S

_NUMBA = importlib.util.find_spec("numba") is not None
_TURNED_OFF = S.setting() == "off"
needs_kernels = pytest.mark.skipif(not _NUMBA or _TURNED_OFF, reason="Numba is not installed or KRONOS_QUANT_NUMBA=0")


@pytest.fixture(autouse=True)
def kernels_asked_for(monkeypatch):
    """These tests exercise the kernels on every CPU: ask for them (``auto`` leaves them off on AVX-512)."""
    if not _TURNED_OFF:
        monkeypatch.setenv("KRONOS_QUANT_NUMBA", "1")
    available = S.available  # the cached function (a test may replace the attribute)
    available.cache_clear()
    yield
    available.cache_clear()


@needs_kernels
def test_kernels_are_on_where_numba_imports_and_they_are_asked_for():
    """A silent fallback would hide a broken kernel: where Numba imports and they are asked for, they run."""
    assert S.available()


@needs_kernels
@pytest.mark.parametrize(("setting", "capability", "on"), [
    ("auto", "AVX2", True), ("auto", "AVX512", False), ("", "DEFAULT", True),
    ("1", "AVX512", True), ("on", "AVX512", True), ("0", "AVX2", False), ("off", "AVX2", False),
    ("maybe", "AVX512", False)])
def test_kronos_quant_numba_setting_and_the_cpu_decide(monkeypatch, caplog, setting, capability, on):
    """``auto`` (the default) turns the kernels on only where torch's kernels are not AVX-512 ones; an unknown
    setting is named in a warning and read as ``auto``."""
    monkeypatch.setenv("KRONOS_QUANT_NUMBA", setting)
    if not setting:
        monkeypatch.delenv("KRONOS_QUANT_NUMBA")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    S.available.cache_clear()
    assert S.available() is on
    if setting == "maybe":
        assert "not one of 0, 1, auto" in caplog.text


@needs_kernels
@pytest.mark.parametrize("rows", [1, 5, 8, 13, 32])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("with_residual", [True, False])
def test_few_row_linear_equals_f_linear(rows, with_bias, with_residual):
    gen = torch.Generator().manual_seed(rows)
    w, b = torch.randn(40, 24, generator=gen), torch.randn(40, generator=gen)
    x = torch.randn(rows, 1, 24, generator=gen)
    res = torch.randn(rows, 1, 40, generator=gen)
    lin = S.FewRowLinear(w, b if with_bias else None)
    got = lin(x, res if with_residual else None)
    want = F.linear(x, w, b if with_bias else None) + (res if with_residual else 0)
    assert got is not None and got.shape == (rows, 1, 40)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@needs_kernels
def test_few_row_linear_reads_strided_inputs_and_declines_what_it_cannot_do():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(16, 12, generator=gen)
    lin = S.FewRowLinear(w, None)
    x = torch.randn(12, 8, generator=gen).t()  # (8, 12), not contiguous
    torch.testing.assert_close(lin(x), x @ w.t(), rtol=1e-5, atol=1e-5)
    assert lin(torch.randn(S.MAX_ROWS + 1, 12)) is None  # many rows: oneDNN's blocked kernels
    assert lin(torch.randn(4, 12, dtype=torch.float64)) is None
    assert lin(torch.randn(4, 12, requires_grad=True)) is None  # training keeps autograd
    assert not S.FewRowLinear.eligible(w.double(), None)


@needs_kernels
def test_few_row_linear_propagates_nan_and_inf():
    """The kernels reorder sums but keep IEEE NaN/inf semantics (no fast-math 'no NaN' assumption)."""
    w = torch.ones(4, 3)
    x = torch.tensor([[1.0, float("nan"), 0.0], [1.0, float("inf"), 0.0]])
    got = S.FewRowLinear(w, None)(x)
    assert got is not None and torch.isnan(got[0]).all() and torch.isinf(got[1]).all()


def _cache_views(gen: torch.Generator, rows: int, heads: int, length: int, head_dim: int, max_len: int):
    kb = torch.randn(rows, heads, max_len, head_dim, generator=gen)
    vb = torch.randn(rows, heads, max_len, head_dim, generator=gen)
    return kb[:, :, :length], vb[:, :, :length]


@needs_kernels
@pytest.mark.parametrize("masked", [None, "per_row", "shared"])
@pytest.mark.parametrize("prefix", [True, False])
def test_one_query_attention_equals_sdpa(masked, prefix):
    gen = torch.Generator().manual_seed(3)
    rows, heads, length, hd = 5, 4, 37, 16
    k, v = _cache_views(gen, rows, heads, length, hd, max_len=50 if prefix else length)
    q = torch.randn(rows, heads, 1, hd, generator=gen) * 3
    mask = None
    if masked == "per_row":  # left padding of 0..4 columns
        mask = (torch.arange(length)[None, :] >= torch.arange(rows)[:, None])[:, None, None, :]
    elif masked == "shared":
        mask = (torch.arange(length) % 3 != 1)[None, None, None, :]
    got = S.one_query_attention(q, k, v, mask)
    assert got is not None and got.shape == (rows, heads, 1, hd)
    torch.testing.assert_close(got, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), rtol=1e-5, atol=1e-5)


@needs_kernels
def test_one_query_attention_declines_layouts_it_does_not_read():
    gen = torch.Generator().manual_seed(4)
    q = torch.randn(2, 3, 1, 8, generator=gen)
    k = torch.randn(2, 3, 8, 10, generator=gen).transpose(2, 3)  # (2, 3, 10, 8), last dim strided
    v = torch.randn(2, 3, 10, 8, generator=gen)
    assert S.one_query_attention(q, k, v) is None
    assert S.one_query_attention(torch.randn(2, 3, 2, 8), v, v) is None  # two queries: torch's flash kernel
    assert S.one_query_attention(q, v, v, torch.ones(2, 1, 1, 10)) is None  # float mask: not this kernel's form
    # and the dispatcher falls back to torch for them, with the same answer
    torch.testing.assert_close(K._attend(q, k, v, mask=None), F.scaled_dot_product_attention(q, k, v))


@needs_kernels
def test_predictor_paths_agree_with_and_without_the_numba_kernels(tiny_models, monkeypatch):
    """The kernels change rounding only, and they do run in a CPU decode step."""
    from kronos_quant import KronosPredictor, SamplingSpec

    model, tok = tiny_models
    rng = np.random.default_rng(0)
    xs = [np.abs(rng.normal(100, 5, (n, 6))) + 1 for n in (20, 35)]
    ps = [np.zeros((n, 5), dtype=np.int64) for n in (20, 35)]
    fs = [np.zeros((4, 5), dtype=np.int64)] * 2
    pred = KronosPredictor(model, tok, max_context=40)
    sp = SamplingSpec(top_k=1)
    calls = {"linear": 0, "attention": 0}
    linear, attention = S._linear, S._attention

    def count_linear(*a, **k):
        calls["linear"] += 1
        return linear(*a, **k)

    def count_attention(*a, **k):
        calls["attention"] += 1
        return attention(*a, **k)

    monkeypatch.setattr(S, "_linear", count_linear)
    monkeypatch.setattr(S, "_attention", count_attention)
    with_kernels = pred.forecast_arrays(xs, ps, fs, horizon=4, sampling=sp, quiet=True).paths
    assert calls["linear"] > 0 and calls["attention"] > 0
    monkeypatch.setattr(S, "available", lambda: False)
    calls.update(linear=0, attention=0)
    without = pred.forecast_arrays(xs, ps, fs, horizon=4, sampling=sp, quiet=True).paths
    assert calls == {"linear": 0, "attention": 0}
    np.testing.assert_allclose(with_kernels, without, rtol=1e-5)


@needs_kernels
def test_the_kernels_leave_torchs_thread_count_as_the_caller_set_it():
    """Starting Numba's OpenMP layer resets the calling thread's OpenMP count, torch's too; a caller's
    ``torch.set_num_threads(1)`` must survive the first decode step. A fresh interpreter, so that the layer starts
    inside the test."""
    code = (
        "import torch\n"
        "torch.set_num_threads(1)\n"
        "from kronos_quant.predictor import streaming as S\n"
        "assert S.available()\n"
        "gen = torch.Generator().manual_seed(0)\n"
        "x, w = torch.randn(8, 16, generator=gen), torch.randn(24, 16, generator=gen)\n"
        "with torch.inference_mode():\n"
        "    y = S.FewRowLinear(w, None)(x)\n"
        "torch.testing.assert_close(y, torch.nn.functional.linear(x, w))\n"
        "print(torch.get_num_threads())\n"
    )
    env = {**os.environ, "KRONOS_QUANT_NUMBA": "1", "NUMBA_NUM_THREADS": "3"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["1"]
