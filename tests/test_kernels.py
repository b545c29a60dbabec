"""The fast path's inference kernels agree with the modules they replace."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kronos_quant.model.layers import RMSNorm, TransformerBlock, apply_rotary, rms_norm
from kronos_quant.predictor import kernels as K


def _block(seed: int = 0) -> TransformerBlock:
    torch.manual_seed(seed)
    block = TransformerBlock(32, 4, 64).eval()
    with torch.no_grad():
        for p in block.parameters():  # non-trivial norms and biases
            p.add_(0.1 * torch.randn_like(p))
    return block


@pytest.mark.parametrize("pack", [False, True])
def test_frozen_linear_fused_steps_match_plain_ops(pack):
    if pack and not K.onednn_available():
        pytest.skip("oneDNN linear ops are not available in this torch build")
    gen = torch.Generator().manual_seed(1)
    w, b = torch.randn(24, 16, generator=gen), torch.randn(24, generator=gen)
    x, other = torch.randn(3, 5, 16, generator=gen), torch.randn(3, 5, 24, generator=gen)
    lin = K.FrozenLinear(w, b, pack=pack)
    assert (lin.packed is not None) == pack
    plain = F.linear(x, w, b)
    with torch.inference_mode():
        torch.testing.assert_close(lin(x), plain, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(lin.silu(x), F.silu(plain), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(lin.mul(x, other), plain * other, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(lin.add(x, other), other + plain, rtol=1e-5, atol=1e-5)


def test_rope_in_pair_order_is_the_modules_rotation():
    """Permuting rows into RoPE-pair order and rotating by a complex product == apply_rotary, then un-permuting."""
    heads, hd, length = 2, 8, 5
    block = TransformerBlock(heads * hd, heads, 32)
    rotary = block.self_attn.rotary
    pos = torch.arange(length)
    x = torch.randn(3, length, 2, heads, hd)
    cos, sin = rotary.tables(pos, x.dtype)  # (L, hd)
    want = apply_rotary(x, cos[:, None, None, :], sin[:, None, None, :])
    perm = K._rope_pairs_adjacent(heads, hd)
    permuted = x.reshape(3, length, 2, heads * hd)[..., perm].reshape(3, length, 2, heads, hd).contiguous()
    got = K._rope(permuted, K.rope_tables(rotary, pos))
    inverse = torch.argsort(perm)
    got = got.reshape(3, length, 2, heads * hd)[..., inverse].reshape(x.shape)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("pack", [False, True])
def test_run_block_equals_module_forward(pack):
    if pack and not K.onednn_available():
        pytest.skip("oneDNN linear ops are not available in this torch build")
    block = _block()
    weights = K.BlockWeights.of(block, pack)
    x = torch.randn(2, 7, 32)
    with torch.inference_mode():
        want = block(x)
        got = K.run_block(weights, x, rot=K.rope_tables(block.self_attn.rotary, torch.arange(7)), causal=True)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_rms_norm_in_place_form_has_the_same_bits_and_still_trains():
    """Without autograd ``rms_norm`` reuses temporaries in place; the bits equal the plain formula's."""
    norm = RMSNorm(16)
    with torch.no_grad():
        norm.weight.add_(torch.randn(16))
    x = torch.randn(3, 5, 16) * 4
    plain = (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.eps)) * norm.weight
    with torch.inference_mode():
        assert torch.equal(norm(x), plain.detach())
        assert torch.equal(rms_norm(x, weight=norm.weight, eps=norm.eps), F.rms_norm(x, (16,), norm.weight, norm.eps))
    y = norm(x.requires_grad_())  # the autograd form
    y.sum().backward()
    assert torch.equal(y.detach(), plain.detach()) and norm.weight.grad is not None and x.grad is not None


@pytest.mark.parametrize("pack", [False, True])
def test_run_block_with_padding_mask_and_last_positions(pack):
    """Left padding + mask equals the module on the unpadded row; ``last`` returns those rows' tail."""
    if pack and not K.onednn_available():
        pytest.skip("oneDNN linear ops are not available in this torch build")
    from kronos_quant.predictor.fast import _key_mask, _self_mask

    block = _block(1)
    weights = K.BlockWeights.of(block, pack)
    rotary = block.self_attn.rotary
    x = torch.randn(2, 9, 32)
    pad = torch.tensor([0, 3])
    pos = (torch.arange(9)[None, :] - pad[:, None]).clamp_min(0)
    with torch.inference_mode():
        mask = _self_mask(_key_mask(pad, 9))
        full = K.run_block(weights, x, rot=K.rope_tables(rotary, pos), mask=mask, causal=True)
        tail = K.run_block(weights, x, rot=K.rope_tables(rotary, pos), mask=mask, causal=True, last=4)
        alone = block(x[1:, 3:])  # the padded row without its padding
        plain = K.run_block(weights, x, rot=K.rope_tables(rotary, torch.arange(9)), causal=True)
        plain_tail = K.run_block(weights, x, rot=K.rope_tables(rotary, torch.arange(9)), causal=True, last=2)
    torch.testing.assert_close(full[1:, 3:], alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(tail, full[:, -4:], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(plain_tail, plain[:, -2:], rtol=1e-5, atol=1e-5)


def test_decode_ragged_last_equals_the_tail_of_a_full_decode(tiny_models):
    from kronos_quant.predictor.fast import decode_ragged

    _, tok = tiny_models
    s1, s2 = torch.randint(0, 16, (3, 12)), torch.randint(0, 16, (3, 12))
    pad = torch.tensor([0, 2, 5])
    full = decode_ragged(tok, s1, s2, pad)
    tail = decode_ragged(tok, s1, s2, pad, last=4)
    assert tail.shape == (3, 4, 6)
    torch.testing.assert_close(tail, full[:, -4:], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(full[0], tok.decode([s1[:1], s2[:1]], half=True)[0], rtol=1e-5, atol=1e-5)


def test_cached_weights_follow_in_place_changes(tiny_models):
    model, tok = tiny_models
    model = type(model)(**model.config).eval()
    model.load_state_dict(tiny_models[0].state_dict())
    first = K.ModelWeights.of(model)
    assert K.ModelWeights.of(model) is first  # cached
    with torch.no_grad():
        model.head.proj_s1.weight.mul_(2.0)
    second = K.ModelWeights.of(model)
    assert second is not first
    np.testing.assert_array_equal(second.head_s1.weight.numpy(), model.head.proj_s1.weight.detach().numpy())
    assert not any("inference" in k for k in model.state_dict())


def test_models_stay_picklable_and_copyable_after_fast_forecasts(tiny_models):
    """The packed copies live beside the modules, not in them (opaque oneDNN tensors cannot be copied)."""
    import copy
    import io
    import pickle

    from kronos_quant import KronosPredictor

    model, tok = tiny_models
    pred = KronosPredictor(model, tok, max_context=24)
    pred.forecast_arrays([np.abs(np.random.default_rng(0).normal(100, 5, (20, 6))) + 1],
                         [np.zeros((20, 5), dtype=np.int64)], [np.zeros((3, 5), dtype=np.int64)], horizon=3, quiet=True)
    for module in (model, tok):
        clone = pickle.loads(pickle.dumps(module))
        torch.testing.assert_close(clone.state_dict(), module.state_dict())
        copy.deepcopy(module)
        torch.save(module, io.BytesIO())


def test_predictor_paths_agree_with_and_without_onednn(tiny_models, monkeypatch):
    """The oneDNN kernels change rounding only: paths agree with the plain-F.linear path."""
    from kronos_quant import KronosPredictor, SamplingSpec

    if not K.onednn_available():
        pytest.skip("oneDNN linear ops are not available in this torch build")
    model, tok = tiny_models
    rng = np.random.default_rng(0)
    xs = [np.abs(rng.normal(100, 5, (n, 6))) + 1 for n in (20, 35)]
    ps = [np.zeros((n, 5), dtype=np.int64) for n in (20, 35)]
    fs = [np.zeros((4, 5), dtype=np.int64)] * 2
    pred = KronosPredictor(model, tok, max_context=24)
    sp = SamplingSpec(top_k=1)
    packed = pred.forecast_arrays(xs, ps, fs, horizon=4, sampling=sp, quiet=True).paths
    monkeypatch.setenv("KRONOS_QUANT_ONEDNN", "0")
    K.onednn_available.cache_clear()
    try:
        assert not K.onednn_available()
        plain = pred.forecast_arrays(xs, ps, fs, horizon=4, sampling=sp, quiet=True).paths
    finally:
        monkeypatch.delenv("KRONOS_QUANT_ONEDNN")
        K.onednn_available.cache_clear()
    assert not np.array_equal(packed, plain)  # different kernels did run
    np.testing.assert_allclose(packed, plain, rtol=1e-5)


def test_rope_reduced_precision_form_matches_complex_form():
    """bf16/fp16 activations (CUDA autocast) take the real form of the same rotation."""
    block = TransformerBlock(16, 2, 32)
    rot = K.rope_tables(block.self_attn.rotary, torch.arange(6))
    x = torch.randn(2, 6, 2, 2, 8)
    want = K._rope(x.clone(), rot)
    got = K._rope(x.to(torch.bfloat16), rot)
    assert got.dtype == torch.bfloat16 and got.shape == x.shape
    torch.testing.assert_close(got.float(), want, rtol=2e-2, atol=2e-2)


def test_fast_generate_runs_under_reduced_precision_autocast(tiny_models):
    """The CUDA bf16 route (autocast, unpacked weights, real-form RoPE), exercised with CPU autocast."""
    from kronos_quant.predictor.fast import GenerationSettings, fast_generate

    model, tok = tiny_models
    torch.manual_seed(3)
    x = torch.randn(3, 30, 6).clamp(-3, 3)
    pad = torch.tensor([0, 5, 12])
    x[1, :5] = 0
    x[2, :12] = 0
    stamps = torch.randint(0, 7, (3, 34, 5))
    settings = GenerationSettings(max_context=24, pred_len=4, top_k=0, top_p=0.9, sample_count=2)
    keys = torch.arange(6, dtype=torch.int64)
    weights = (K.ModelWeights.of(model, pack=False), K.TokenizerWeights.of(tok, pack=False))
    full = fast_generate(tok, model, x, pad, stamps, settings, keys, weights=weights)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = fast_generate(tok, model, x, pad, stamps, settings, keys, weights=weights)
    assert half.shape == full.shape == (3, 2, 4, 6)
    assert torch.isfinite(half.float()).all()
