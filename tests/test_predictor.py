"""The batched predictor: conformance, KV-cache exactness, ragged batches, sampling, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kronos_quant import KronosPredictor, SamplingSpec
from kronos_quant.errors import ModelUnavailableError
from tests.conftest import shared_path

COLS = ["open", "high", "low", "close", "volume", "amount"]
MICRO = Path(__file__).resolve().parent / "fixtures" / "kronos-micro"


def _cases():
    path = shared_path("fixtures", "kronos-reference", "tiny-a", "cases.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("method", ["fast", "reference"])
def test_greedy_conformance_cases(reference_models, method):
    model, tok = reference_models
    fx = shared_path("fixtures", "kronos-reference", "tiny-a")
    cases = _cases()
    df = pd.read_csv(shared_path("data", "cn_a_share_5min.csv"), parse_dates=["timestamps"])
    df = df.iloc[cases["data_offset"]:].reset_index(drop=True)
    kw = dict(T=1.0, top_k=1, top_p=1.0, sample_count=1, verbose=False)
    for case in cases["cases"]:
        pred = KronosPredictor(model, tok, device="cpu", max_context=case["max_context"], method=method)
        lb, pl = case["lookback"], case["pred_len"]
        starts = case.get("starts", [case.get("start", 0)])
        expected = case["expected"] if isinstance(case["expected"], list) else [case["expected"]]
        dfs = [df.iloc[s:s + lb][case.get("columns", COLS)].reset_index(drop=True) for s in starts]
        xs = [df["timestamps"].iloc[s:s + lb].reset_index(drop=True) for s in starts]
        ys = [df["timestamps"].iloc[s + lb:s + lb + pl].reset_index(drop=True) for s in starts]
        outs = pred.predict_batch(dfs, xs, ys, pl, **kw)
        for out, exp_file, y in zip(outs, expected, ys):
            exp = pd.read_csv(fx / exp_file)
            np.testing.assert_allclose(out[COLS].to_numpy(), exp[COLS].to_numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=f"{case['id']} ({method})")
            assert list(out.index) == list(pd.DatetimeIndex(y))


@pytest.fixture(scope="module")
def micro():
    """The committed micro checkpoint, bars and the ORIGINAL implementation's greedy outputs (no ../shared needed).

    Made by tests/fixtures/kronos-micro/make_fixture.py with github.com/shiyu-coder/Kronos itself.
    """
    from kronos_quant import Kronos, KronosTokenizer

    bars = pd.read_csv(MICRO / "bars.csv", parse_dates=["timestamps"])
    cases = json.loads((MICRO / "cases.json").read_text())["cases"]
    return (Kronos.from_pretrained(str(MICRO / "predictor")), KronosTokenizer.from_pretrained(str(MICRO / "tokenizer")),
            bars, {c["id"]: c for c in cases})


def _micro_inputs(bars, case, horizon=None):
    lb, h = case["lookback"], horizon or case["pred_len"]
    frames = [bars.iloc[s:s + lb][case.get("columns", COLS)].reset_index(drop=True) for s in case["starts"]]
    past = [bars["timestamps"].iloc[s:s + lb].reset_index(drop=True) for s in case["starts"]]
    future = [bars["timestamps"].iloc[s + lb:s + lb + h].reset_index(drop=True) for s in case["starts"]]
    return frames, past, future


@pytest.mark.parametrize("method", ["fast", "reference"])
def test_greedy_matches_the_original_on_the_committed_micro_fixture(micro, method):
    """Both paths reproduce the original's greedy forecasts: plain, past the window, OHLC only, a batch."""
    model, tok, bars, cases = micro
    kw = dict(T=1.0, top_k=1, top_p=1.0, sample_count=1, verbose=False)
    for case in cases.values():
        pred = KronosPredictor(model, tok, device="cpu", max_context=case["max_context"], method=method)
        outs = pred.predict_batch(*_micro_inputs(bars, case), case["pred_len"], **kw)
        for out, want in zip(outs, case["expected"], strict=True):
            np.testing.assert_allclose(out[COLS].to_numpy(), np.asarray(want), rtol=1e-4, atol=1e-5,
                                       err_msg=f"{case['id']} ({method})")


def test_ragged_batch_matches_the_original_on_the_committed_micro_fixture(micro):
    """Series of different lengths in one left-padded batch (which the original cannot run) give the
    original's per-series numbers. The 40-bar series is forecast 5 steps: greedy decoding and the
    causal decoder make those the first 5 of its 6-step forecast."""
    model, tok, bars, cases = micro
    long, batch = cases["greedy_lb40_h6"], cases["batch_lb32_h5"]
    f1, p1, y1 = _micro_inputs(bars, long, horizon=5)
    f2, p2, y2 = _micro_inputs(bars, batch)
    outs = KronosPredictor(model, tok, device="cpu").predict_batch(
        f2[:1] + f1 + f2[1:], p2[:1] + p1 + p2[1:], y2[:1] + y1 + y2[1:], 5, T=1.0, top_k=1, sample_count=1,
        verbose=False)
    want = [batch["expected"][0], long["expected"][0][:5], *batch["expected"][1:]]
    for i, (out, exp) in enumerate(zip(outs, want, strict=True)):
        np.testing.assert_allclose(out[COLS].to_numpy(), np.asarray(exp), rtol=1e-4, atol=1e-5, err_msg=f"series {i}")


def _windows(a_share, lengths, starts, horizon):
    arr, st, _ = a_share
    xs = [arr[s:s + n] for s, n in zip(starts, lengths)]
    ps = [st[s:s + n] for s, n in zip(starts, lengths)]
    fs = [st[s + n:s + n + horizon] for s, n in zip(starts, lengths)]
    return xs, ps, fs


@pytest.mark.parametrize("max_context", [512, 40])
def test_fast_equals_reference_when_sampling(reference_models, a_share, max_context):
    """Same seeds -> same sampled tokens and paths, also once the window slides (max_context 40)."""
    model, tok = reference_models
    pred = KronosPredictor(model, tok, max_context=max_context)
    xs, ps, fs = _windows(a_share, [48, 48, 48], [0, 500, 1500], 10)
    sp = SamplingSpec(samples=3, temperature=1.0, top_p=0.9, seed=3)
    fast = pred.forecast_arrays(xs, ps, fs, horizon=10, sampling=sp, seeds=[1, 2, 3])
    ref = pred.forecast_arrays(xs, ps, fs, horizon=10, sampling=sp, seeds=[1, 2, 3], method="reference")
    np.testing.assert_allclose(fast.paths, ref.paths, rtol=1e-4)
    assert fast.paths.shape == (3, 3, 10, 6)
    assert not np.allclose(fast.paths[:, 0], fast.paths[:, 1])  # samples differ


def test_ragged_batch_matches_single_series(reference_models, a_share):
    model, tok = reference_models
    pred = KronosPredictor(model, tok, max_context=40)
    lengths, starts = [30, 64, 35, 12, 41, 1], [0, 100, 300, 700, 900, 1200]
    xs, ps, fs = _windows(a_share, lengths, starts, 12)
    sp = SamplingSpec(samples=2, temperature=0.8, top_k=5, seed=0)
    seeds = [10, 20, 30, 40, 50, 60]
    batch = pred.forecast_arrays(xs, ps, fs, horizon=12, sampling=sp, seeds=seeds)
    for i in range(len(xs)):
        alone = pred.forecast_arrays([xs[i]], [ps[i]], [fs[i]], horizon=12, sampling=sp, seeds=[seeds[i]])
        np.testing.assert_allclose(batch.paths[i], alone.paths[0], rtol=1e-4, err_msg=f"series {i}")
        ref = pred.forecast_arrays([xs[i]], [ps[i]], [fs[i]], horizon=12, sampling=sp, seeds=[seeds[i]],
                                   method="reference")
        np.testing.assert_allclose(batch.paths[i], ref.paths[0], rtol=1e-4, err_msg=f"series {i} vs reference")


def test_micro_batching_and_seeds_are_batch_invariant(reference_models, a_share):
    model, tok = reference_models
    xs, ps, fs = _windows(a_share, [40, 50, 60, 70], [0, 200, 400, 600], 5)
    sp = SamplingSpec(samples=4, seed=9)
    whole = KronosPredictor(model, tok, max_context=64).forecast_arrays(xs, ps, fs, horizon=5, sampling=sp)
    tiny_budget = KronosPredictor(model, tok, max_context=64, memory_budget_mb=0.05)
    assert len(tiny_budget._plan_chunks([len(x) for x in xs], 5, 4)) > 1
    chunked = tiny_budget.forecast_arrays(xs, ps, fs, horizon=5, sampling=sp)
    np.testing.assert_allclose(whole.paths, chunked.paths, rtol=1e-5)
    again = KronosPredictor(model, tok, max_context=64).forecast_arrays(xs, ps, fs, horizon=5, sampling=sp)
    np.testing.assert_array_equal(whole.paths, again.paths)
    other = KronosPredictor(model, tok, max_context=64).forecast_arrays(
        xs, ps, fs, horizon=5, sampling=SamplingSpec(samples=4, seed=10))
    assert not np.allclose(whole.paths, other.paths)


def test_summaries(reference_models, a_share):
    model, tok = reference_models
    xs, ps, fs = _windows(a_share, [64, 64], [0, 100], 6)
    res = KronosPredictor(model, tok).forecast_arrays(xs, ps, fs, horizon=6, sampling=SamplingSpec(samples=16))
    assert res.mean.shape == res.median.shape == (2, 6, 6)
    q = res.quantiles
    assert q.shape == (2, len(res.quantile_levels), 6, 6)
    assert np.all(np.diff(q, axis=1) >= -1e-9)
    assert res.prob_up.shape == (2, 6) and np.all((res.prob_up >= 0) & (res.prob_up <= 1))
    np.testing.assert_allclose(res.last_close, [xs[0][-1, 3], xs[1][-1, 3]])
    np.testing.assert_allclose(res.mean, res.paths.mean(axis=1))


def test_predict_accepts_ohlc_only_and_returns_frame(reference_models, a_share):
    model, tok = reference_models
    arr, _, ts = a_share
    df = pd.DataFrame(arr[:50, :4], columns=COLS[:4])
    out = KronosPredictor(model, tok).predict(df, ts[:50], ts[50:55], pred_len=5, top_k=1, verbose=False)
    assert list(out.columns) == COLS and len(out) == 5
    assert np.isfinite(out.to_numpy()).all()


def _bad(pred, a_share, **change):
    arr, _, ts = a_share
    args = dict(df=pd.DataFrame(arr[:30], columns=COLS), x_timestamp=ts[:30], y_timestamp=ts[30:35], pred_len=5)
    args.update(change)
    return pred.predict(**args, verbose=False)


@pytest.mark.parametrize("change,match", [
    (dict(df=pd.DataFrame(np.full((30, 6), np.nan), columns=COLS)), "NaN"),
    (dict(pred_len=0), "horizon"),
    (dict(y_timestamp=pd.Series(pd.date_range("2024-01-01", periods=3, freq="min"))), "3 future timestamps"),
    (dict(x_timestamp=pd.Series(pd.date_range("2024-01-01", periods=29, freq="min"))), "29 timestamps for 30 rows"),
    (dict(x_timestamp=pd.Series(pd.date_range("2024-01-01", periods=30, freq="min")[::-1])), "not strictly increasing"),
    (dict(df=pd.DataFrame(np.ones((30, 3)), columns=["open", "high", "low"])), "missing price column"),
])
def test_bad_input_errors(reference_models, a_share, change, match):
    model, tok = reference_models
    with pytest.raises(ValueError, match=match):
        _bad(KronosPredictor(model, tok), a_share, **change)


def test_bad_arrays_name_the_series(reference_models, a_share):
    model, tok = reference_models
    pred = KronosPredictor(model, tok)
    xs, ps, fs = _windows(a_share, [20, 20], [0, 50], 3)
    inf = xs[1].copy()
    inf[4, 2] = np.inf
    with pytest.raises(ValueError, match=r"series 1 \('MSFT'\): NaN or inf"):
        pred.forecast_arrays([xs[0], inf], ps, fs, horizon=3, names=["AAPL", "MSFT"])
    with pytest.raises(ValueError, match="series 0: empty series"):
        pred.forecast_arrays([xs[0][:0]], [ps[0][:0]], [fs[0]], horizon=3)
    with pytest.raises(ValueError, match="series 1: 20 bars but 19 timestamps"):
        pred.forecast_arrays(xs, [ps[0], ps[1][:-1]], fs, horizon=3)


def test_upstream_kronos_small_regression():
    """The original project's regression expectations; needs the real weights in the local HF cache."""
    try:
        pred = KronosPredictor.from_pretrained("kronos-small", local_files_only=True, device="cpu")
    except ModelUnavailableError as exc:
        pytest.skip(f"real Kronos-small weights not in the local Hugging Face cache: {exc}")
    df = pd.read_csv(shared_path("data", "cn_a_share_5min.csv"), parse_dates=["timestamps"])
    for ctx in (256, 512):
        exp = pd.read_csv(shared_path("fixtures", "kronos-reference", "upstream-kronos-small",
                                      f"regression_output_{ctx}.csv"))
        future = pd.to_datetime(exp["timestamps"]) if "timestamps" in exp else df["timestamps"].iloc[ctx:ctx + 8]
        cols = [c for c in COLS if c in exp.columns]
        want = exp[cols].to_numpy()
        ref = pred.predict(df.iloc[:ctx][COLS], df["timestamps"].iloc[:ctx], future, pred_len=8, top_k=1,
                           verbose=False, method="reference")
        np.testing.assert_allclose(ref[cols].to_numpy(), want, rtol=1e-5)  # the original's procedure, its tolerance
        # the default fast path: the same tokens; its kernels round differently (~1e-7 of a column's scale)
        out = pred.predict(df.iloc[:ctx][COLS], df["timestamps"].iloc[:ctx], future, pred_len=8, top_k=1,
                           verbose=False)
        _assert_same_tokens(out[cols].to_numpy()[None, None], want[None, None],
                            [df.iloc[:ctx][cols].to_numpy(np.float64)])


@pytest.mark.parametrize("method", ["fast", "reference"])
def test_horizon_longer_than_the_context_is_a_clear_error(tiny_models, method):
    model, tok = tiny_models
    x = np.abs(np.random.default_rng(0).normal(100, 5, (20, 6))) + 1
    with pytest.raises(ValueError, match="horizon .pred_len. 10 exceeds max_context 8"):
        KronosPredictor(model, tok, max_context=8).forecast_arrays(
            [x], [np.zeros((20, 5), np.int64)], [np.zeros((10, 5), np.int64)], horizon=10, quiet=True, method=method)


def test_half_precision_is_cuda_only(reference_models):
    model, tok = reference_models
    with pytest.raises(ValueError, match="CUDA only"):
        KronosPredictor(model, tok, device="cpu", dtype="bfloat16")
    with pytest.raises(ValueError, match="dtype must be one of"):
        KronosPredictor(model, tok, device="cpu", dtype="float8")


def test_torch_compile_path_gives_same_paths(a_share):
    from kronos_quant import Kronos, KronosTokenizer

    fx = shared_path("fixtures", "kronos-reference", "tiny-a")
    model, tok = Kronos.from_pretrained(fx / "predictor"), KronosTokenizer.from_pretrained(fx / "tokenizer")
    xs, ps, fs = _windows(a_share, [30, 40], [0, 100], 4)
    sp = SamplingSpec(samples=2, seed=1)
    plain = KronosPredictor(model, tok).forecast_arrays(xs, ps, fs, horizon=4, sampling=sp)
    compiled = KronosPredictor(Kronos.from_pretrained(fx / "predictor"), tok, compile="eager")
    np.testing.assert_allclose(compiled.forecast_arrays(xs, ps, fs, horizon=4, sampling=sp).paths, plain.paths,
                               rtol=1e-5)


def test_fast_equals_reference_without_shared_fixtures(tiny_models):
    """Same check on a random tiny model and synthetic bars, so it runs where ../shared is absent."""
    from kronos_quant.data import synthetic_market, time_features

    model, tok = tiny_models
    panel = synthetic_market(3, 120, mode="realistic", seed=4).to_pandas()
    xs, ps, fs = [], [], []
    for (_, g), n in zip(panel.groupby("instrument"), [50, 80, 33]):
        arr = g[COLS].to_numpy(np.float64)
        st = time_features(g["timestamp"])
        xs.append(arr[:n])
        ps.append(st[:n])
        fs.append(st[n:n + 9])
    sp = SamplingSpec(samples=3, temperature=1.0, top_p=0.8, seed=5)
    pred = KronosPredictor(model, tok, max_context=48)
    fast = pred.forecast_arrays(xs, ps, fs, horizon=9, sampling=sp, seeds=[1, 2, 3])
    ref = pred.forecast_arrays(xs, ps, fs, horizon=9, sampling=sp, seeds=[1, 2, 3], method="reference")
    _assert_same_tokens(fast.paths, ref.paths, xs)
    greedy = SamplingSpec(top_k=1)
    _assert_same_tokens(pred.forecast_arrays(xs, ps, fs, horizon=9, sampling=greedy).paths,
                        pred.forecast_arrays(xs, ps, fs, horizon=9, sampling=greedy, method="reference").paths, xs)


def _assert_same_tokens(fast: np.ndarray, ref: np.ndarray, xs: list[np.ndarray]) -> None:
    """Paths (B, S, H, C) agree to float rounding, measured in each series' own column scale.

    The fast path's kernels round differently (~1e-6 in normalised units); denormalising scales
    that by the column's std, which dwarfs small values of wide columns such as volume. A
    different token moves a value by a sizeable fraction of the std, far above this tolerance.
    """
    scale = np.stack([x.std(axis=0) + np.abs(x.mean(axis=0)) for x in xs])[:, None, None, :]  # (B, 1, 1, C)
    err = np.abs(fast - ref) / scale
    assert err.max() < 1e-5, f"fast and reference paths differ by {err.max():.2e} of the column scale"


def test_frame_to_array_fills_volume_and_amount_and_names_bad_columns():
    from kronos_quant.predictor.frames import frame_to_array

    ohlc = pd.DataFrame({"open": [1.0, 2.0], "high": [2.0, 4.0], "low": [1.0, 1.0], "close": [2.0, 3.0]})
    np.testing.assert_array_equal(frame_to_array(ohlc)[:, 4:], 0.0)  # no volume: volume and amount are 0
    with_volume = ohlc.assign(volume=[10, 20])
    np.testing.assert_allclose(frame_to_array(with_volume)[:, 5], [10 * 1.5, 20 * 2.5])  # volume x mean(OHLC)
    np.testing.assert_array_equal(frame_to_array(with_volume.assign(amount=[7, 8]))[:, 5], [7.0, 8.0])
    with pytest.raises(ValueError, match="x: column 'close' is not numeric"):
        frame_to_array(ohlc.assign(close=["a", "b"]), label="x")
    with pytest.raises(ValueError, match="NaN values in column\\(s\\) \\['high'\\]"):
        frame_to_array(ohlc.assign(high=[1.0, np.nan]))
    with pytest.raises(ValueError, match="2 columns are named 'open'"):
        frame_to_array(pd.concat([ohlc, ohlc[["open"]]], axis=1))
