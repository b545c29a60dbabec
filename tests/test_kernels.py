"""The fast path's inference kernels agree with the modules they replace."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kronos_quant.model.layers import FeedForward, RMSNorm, TransformerBlock, apply_rotary, rms_norm, swiglu
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


def test_rms_norm_forms_have_the_same_bits_and_still_train():
    """float32 runs as fused ``F.rms_norm``, other dtypes step by step (in place without autograd); both give
    the plain formula's bits, and the autograd form trains."""
    norm = RMSNorm(16)
    with torch.no_grad():
        norm.weight.add_(torch.randn(16))
    x = torch.randn(3, 5, 16) * 4
    plain = (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.eps)) * norm.weight
    xb, wb = x.bfloat16(), norm.weight.detach().bfloat16()
    with torch.inference_mode():
        assert torch.equal(norm(x), plain.detach())
        want = (xb.float() * torch.rsqrt(xb.float().pow(2).mean(-1, keepdim=True) + norm.eps)).bfloat16() * wb
        in_place = rms_norm(xb, weight=wb, eps=norm.eps)  # the step-by-step form: float32 inside, cast back
        assert torch.equal(in_place, want)
    assert torch.equal(in_place, rms_norm(xb, weight=wb, eps=norm.eps))  # autograd on: no in-place reuse
    y = norm(x.requires_grad_())  # the autograd form
    y.sum().backward()
    assert torch.equal(y.detach(), plain.detach()) and norm.weight.grad is not None and x.grad is not None


@pytest.mark.parametrize("rows", [1, 16, 17, 400])
def test_rms_norm_float32_routes_give_the_plain_formulas_bits(rows):
    """Few rows take fused ``F.rms_norm``, many the steps; on either side of the switch the bits are the formula's."""
    weight = torch.randn(64)
    x = torch.randn(2, rows, 64) * 3
    plain = (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)) * weight
    with torch.inference_mode():
        assert torch.equal(rms_norm(x, weight=weight, eps=1e-5), plain)
        assert torch.equal(rms_norm(x, weight=None, eps=1e-5), x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))
        xb = x.bfloat16()  # the step form without a weight (what the fast blocks' reduced-precision norm calls)
        want = (xb.float() * torch.rsqrt(xb.float().pow(2).mean(-1, keepdim=True) + 1e-5)).bfloat16()
        assert torch.equal(rms_norm(xb, weight=None, eps=1e-5), want)


@pytest.mark.parametrize("length", [159, 160, 250, 401])
@pytest.mark.parametrize("padded", [False, True])
def test_causal_attention_in_query_chunks_equals_one_call(length, padded):
    """Query chunks over their keys [0, end) give torch's one-call causal attention, with and without a padding
    mask, on lengths that do and do not divide into chunks; the output merges heads without a copy."""
    from kronos_quant.predictor.fast import _key_mask, _self_mask

    q, k, v = (torch.randn(3, 2, length, 8) for _ in range(3))
    mask = _self_mask(_key_mask(torch.tensor([0, 7, 60]), length)) if padded else None
    with torch.inference_mode():
        got = K._attend(q, k, v, mask=mask, causal=True)
        want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None)
        chunks = K._chunk_masks(length, q.device)
    assert [c[0] for c in chunks] == [0] + [c[1] for c in chunks[:-1]] and chunks[-1][1] == length
    assert max(e - s for s, e, _ in chunks) <= K._QUERY_CHUNK
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert got.transpose(1, 2).is_contiguous() == (length >= 2 * K._QUERY_CHUNK)  # chunked: heads merge as a view


@pytest.mark.parametrize("pack", [False, True])
def test_run_block_with_padding_mask_and_cache(pack):
    """Left padding + mask equals the module on the unpadded row; a cached second chunk equals one pass;
    ``fill_cache`` stores what ``run_block`` stores."""
    if pack and not K.onednn_available():
        pytest.skip("oneDNN linear ops are not available in this torch build")
    from kronos_quant.predictor.fast import _key_mask, _self_mask
    from kronos_quant.predictor.kv_cache import LayerKVCache

    block = _block(1)
    weights = K.BlockWeights.of(block, pack)
    rotary = block.self_attn.rotary
    x = torch.randn(2, 9, 32)
    pad = torch.tensor([0, 3])
    pos = (torch.arange(9)[None, :] - pad[:, None]).clamp_min(0)
    with torch.inference_mode():
        mask = _self_mask(_key_mask(pad, 9))
        full = K.run_block(weights, x, rot=K.rope_tables(rotary, pos), mask=mask, causal=True)
        alone = block(x[1:, 3:])  # the padded row without its padding
        head, tail = LayerKVCache(9), LayerKVCache(9)
        first = K.run_block(weights, x[:, :6], rot=K.rope_tables(rotary, pos[:, :6]), mask=mask[:, :, :6, :6],
                            cache=head)
        K.fill_cache(weights, x[:, :6], rot=K.rope_tables(rotary, pos[:, :6]), cache=tail)
        second = K.run_block(weights, x[:, 6:], rot=K.rope_tables(rotary, pos[:, 6:]), mask=mask[:, :, 6:],
                             cache=head, start=6)
    torch.testing.assert_close(full[1:, 3:], alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([first, second], 1), full, rtol=1e-5, atol=1e-5)
    assert torch.equal(tail.k[:, :, :6], head.k[:, :, :6]) and torch.equal(tail.v[:, :, :6], head.v[:, :, :6])


@pytest.mark.parametrize("max_context", [64, 30])
def test_decode_paths_equals_the_tokenizer_on_each_rows_window(tiny_models, max_context):
    """Shared context parts decoded once per series, then S samples' generated tokens: the same numbers
    as ``KronosTokenizer.decode`` on each row's last min(T + H, max_context) tokens (ragged, S = 3,
    and past the window with max_context 30)."""
    from kronos_quant.predictor.fast import DecodeState, decode_paths

    _, tok = tiny_models
    gen = torch.Generator().manual_seed(5)
    hist, horizon, reps = [25, 12, 40], 4, 3
    width = min(max(hist), max_context)
    ids = [torch.randint(0, 16, (len(hist) * reps, width + horizon), generator=gen) for _ in range(2)]
    for b in range(len(hist)):  # the samples of a series share its context columns
        for i in (0, 1):
            ids[i][b * reps:(b + 1) * reps, :width] = ids[i][b * reps, :width]
    state = DecodeState(ids[0], ids[1], torch.zeros(1), torch.zeros(1), (), False, [], None, width)  # type: ignore[arg-type]
    got = decode_paths(tok, state, hist, horizon=horizon, max_context=max_context, repeats=reps)
    assert got.shape == (len(hist) * reps, horizon, 6)
    for row in range(len(hist) * reps):
        window = min(hist[row // reps] + horizon, max_context)
        cols = slice(width + horizon - window, width + horizon)
        want = tok.decode([ids[0][row:row + 1, cols], ids[1][row:row + 1, cols]], half=True)[0, -horizon:]
        torch.testing.assert_close(got[row], want, rtol=1e-5, atol=1e-5, msg=f"row {row}")


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
    assert K.ModelWeights.of(model).blocks[0].qkv.packed is not None  # the oneDNN kernels ran
    monkeypatch.setenv("KRONOS_QUANT_ONEDNN", "0")
    K.onednn_available.cache_clear()
    try:
        assert not K.onednn_available()
        plain = pred.forecast_arrays(xs, ps, fs, horizon=4, sampling=sp, quiet=True).paths
        assert K.ModelWeights.of(model).blocks[0].qkv.packed is None  # F.linear ran
    finally:
        monkeypatch.delenv("KRONOS_QUANT_ONEDNN")
        K.onednn_available.cache_clear()
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
    settings = GenerationSettings(max_context=24, horizon=4, top_k=0, top_p=0.9, samples=2)
    keys = torch.arange(6, dtype=torch.int64)
    weights = (K.ModelWeights.of(model, pack=False), K.TokenizerWeights.of(tok, pack=False))
    full = fast_generate(tok, model, x, pad, stamps, settings, keys, weights=weights)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = fast_generate(tok, model, x, pad, stamps, settings, keys, weights=weights)
    assert half.shape == full.shape == (3, 2, 4, 6)
    assert torch.isfinite(half.float()).all()


def test_swiglu_with_fused_w1_w3_equals_the_two_products():
    """``w13`` (w1's rows then w3's) gives w2(silu(w1 h) * w3 h), with and without autograd; neither form: TypeError."""
    ffn = FeedForward(8, 12)
    h = torch.randn(2, 3, 8)
    w13 = K.FrozenLinear.fuse([ffn.w1.weight, ffn.w3.weight], [None, None], pack=False)
    want = ffn.w2(F.silu(ffn.w1(h)) * ffn.w3(h))
    torch.testing.assert_close(swiglu(h, w13=w13, w2=ffn.w2), want, rtol=1e-6, atol=1e-6)
    with torch.inference_mode():
        torch.testing.assert_close(swiglu(h, w13=w13, w2=ffn.w2, residual=h), h + want, rtol=1e-6, atol=1e-6)
    with pytest.raises(TypeError, match="w13"):
        swiglu(h, w2=ffn.w2, w1=ffn.w1)


def test_causal_attention_under_torch_compile_is_one_traced_call():
    """``torch.compile`` traces torch's single causal call (no chunk loop, no cached masks to trace around)."""
    import warnings

    q, k, v = (torch.randn(2, 2, 200, 8) for _ in range(3))
    with torch.inference_mode(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = torch.compile(lambda a, b, c: K._attend(a, b, c, mask=None, causal=True), backend="eager")(q, k, v)
    torch.testing.assert_close(got, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert not [w for w in caught if "lru_cache" in str(w.message)]
