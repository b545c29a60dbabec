"""Baseline forecasters: shapes, path consistency, seeding, and what each model estimates."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from kronos_quant.baselines import HistoricalDriftForecaster, LinearForecaster, RandomWalkForecaster
from kronos_quant.schema import FIELDS, Forecaster, ForecastResult, SamplingSpec

OPEN, HIGH, LOW, CLOSE, VOLUME, AMOUNT = range(6)
ALL = [RandomWalkForecaster, HistoricalDriftForecaster, LinearForecaster]


def make_window(n_bars: int, *, seed: int, drift: float = 0.0, vol: float = 0.01, phi: float = 0.0) -> np.ndarray:
    """(T, 6) OHLCV+amount bars whose close log returns follow an AR(1) with mean ``drift``."""
    rng = np.random.default_rng(seed)
    r = np.empty(n_bars)
    prev = 0.0
    for t in range(n_bars):
        prev = phi * prev + rng.normal(0.0, vol)
        r[t] = drift + prev
    close = 50.0 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[50.0], close[:-1]])
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.003, n_bars)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.003, n_bars)))
    volume = rng.uniform(1e5, 2e5, n_bars)
    return np.stack([open_, high, low, close, volume, volume * close], axis=1)


def run(forecaster, windows, *, horizon=4, samples=8, seeds=None, **sampling):
    spec = SamplingSpec(samples=samples, **sampling)
    stamps = [np.zeros((len(w), 5), dtype=np.int64) for w in windows]
    future = [np.zeros((horizon, 5), dtype=np.int64) for _ in windows]
    seeds = list(range(len(windows))) if seeds is None else seeds
    return forecaster.forecast_arrays(windows, stamps, future, horizon=horizon, sampling=spec, seeds=seeds)


@pytest.mark.parametrize("cls", ALL)
def test_shapes_and_candle_consistency(cls):
    f = cls()
    assert isinstance(f, Forecaster)
    json.dumps(f.identity)  # JSON-serialisable, it keys the cache
    windows = [make_window(80, seed=1), make_window(45, seed=2), make_window(3, seed=3)]
    res = run(f, windows, horizon=5, samples=7)
    assert res.paths.shape == (3, 7, 5, len(FIELDS))
    p = res.paths
    assert np.isfinite(p).all() and (p[..., :4] > 0).all()
    assert (p[..., HIGH] >= np.maximum(p[..., OPEN], p[..., CLOSE]) - 1e-12).all()
    assert (p[..., LOW] <= np.minimum(p[..., OPEN], p[..., CLOSE]) + 1e-12).all()
    np.testing.assert_allclose(p[:, :, 0, OPEN], np.broadcast_to(res.last_close[:, None], (3, 7)))  # first open = last close
    np.testing.assert_allclose(p[:, :, 1:, OPEN], p[:, :, :-1, CLOSE])
    np.testing.assert_allclose(res.last_close, [w[-1, CLOSE] for w in windows])
    np.testing.assert_allclose(p[0, :, :, VOLUME], windows[0][:, VOLUME].mean())


@pytest.mark.parametrize("cls", ALL)
def test_paths_depend_only_on_own_seed_and_window(cls):
    f = cls()
    a, b, c = make_window(60, seed=4), make_window(70, seed=5), make_window(50, seed=6)
    together = run(f, [a, b, c], seeds=[11, 22, 33])
    alone = run(f, [b], seeds=[22])
    reordered = run(f, [c, b], seeds=[33, 22])
    np.testing.assert_array_equal(together.paths[1], alone.paths[0])
    np.testing.assert_array_equal(together.paths[1], reordered.paths[1])
    other_seed = run(f, [b], seeds=[23])
    assert not np.array_equal(alone.paths, other_seed.paths)


def test_greedy_random_walk_is_flat_and_drift_compounds():
    w = make_window(100, seed=7, drift=0.002)
    rw = run(RandomWalkForecaster(), [w], samples=3, top_k=1).paths
    np.testing.assert_allclose(rw[..., CLOSE], w[-1, CLOSE])
    drift = run(HistoricalDriftForecaster(), [w], horizon=3, samples=1, top_k=1).paths[0, 0, :, CLOSE]
    mu = np.mean(np.diff(np.log(w[:, CLOSE])))
    np.testing.assert_allclose(drift, w[-1, CLOSE] * np.exp(mu * np.arange(1, 4)))


def test_random_walk_volatility_matches_window():
    w = make_window(300, seed=8, vol=0.02)
    sigma = np.std(np.diff(np.log(w[:, CLOSE])), ddof=1)
    paths = run(RandomWalkForecaster(), [w], horizon=2, samples=4000).paths[0]
    step1 = np.log(paths[:, 0, CLOSE] / w[-1, CLOSE])
    assert abs(step1.mean()) < 4 * sigma / np.sqrt(4000)
    assert step1.std() == pytest.approx(sigma, rel=0.05)
    two = np.log(paths[:, 1, CLOSE] / w[-1, CLOSE])
    assert two.std() == pytest.approx(sigma * np.sqrt(2), rel=0.05)  # independent steps
    hot = run(RandomWalkForecaster(), [w], horizon=1, samples=4000, temperature=2.0).paths[0, :, 0, CLOSE]
    assert np.log(hot / w[-1, CLOSE]).std() == pytest.approx(2 * sigma, rel=0.05)


def test_linear_recovers_autoregression_within_one_window():
    phi = 0.6
    last, pred1, pred2 = [], [], []
    for seed in range(30):
        w = make_window(250, seed=seed, phi=phi)
        res = run(LinearForecaster(n_lags=3, alpha=0.1), [w], horizon=2, samples=1, top_k=1)
        assert res.info["n_fallback"] == 0
        close = res.paths[0, 0, :, CLOSE]
        last.append(np.log(w[-1, CLOSE] / w[-2, CLOSE]))
        pred1.append(np.log(close[0] / w[-1, CLOSE]))
        pred2.append(np.log(close[1] / close[0]))
    last, pred1, pred2 = map(np.asarray, (last, pred1, pred2))
    slope1 = np.polyfit(last, pred1, 1)[0]
    slope2 = np.polyfit(last, pred2, 1)[0]
    # E[r_{t+1} | r_t] = phi r_t and E[r_{t+2} | r_t] = phi^2 r_t, fitted per window
    assert 0.4 < slope1 < 0.8, slope1
    assert 0.15 < slope2 < slope1, slope2
    assert np.corrcoef(last, pred1)[0, 1] > 0.8


def test_linear_noise_is_residual_scale_and_short_windows_fall_back():
    w = make_window(200, seed=3, vol=0.01)
    paths = run(LinearForecaster(), [w], horizon=1, samples=3000).paths[0, :, 0, CLOSE]
    assert np.log(paths / w[-1, CLOSE]).std() == pytest.approx(0.01, rel=0.15)
    short = run(LinearForecaster(min_train_rows=20), [make_window(15, seed=1)], horizon=3)
    assert short.info["n_fallback"] == 1 and np.isfinite(short.paths).all()


def test_identity_reflects_settings():
    assert LinearForecaster(n_lags=3).identity != LinearForecaster(n_lags=4).identity
    assert RandomWalkForecaster().identity != HistoricalDriftForecaster().identity
    assert RandomWalkForecaster(volume_mode="last").identity["volume_mode"] == "last"


def test_bad_inputs_raise_clear_errors():
    f = RandomWalkForecaster()
    with pytest.raises(ValueError, match="shape"):
        run(f, [np.ones((10, 4))])
    with pytest.raises(ValueError, match="one seed per series"):
        run(f, [make_window(10, seed=1)], seeds=[1, 2])
    with pytest.raises(ValueError, match="horizon"):
        run(f, [make_window(10, seed=1)], horizon=0)
    with pytest.raises(ValueError, match="n_lags"):
        LinearForecaster(n_lags=0)
    with pytest.raises(ValueError, match="volume_mode"):
        RandomWalkForecaster(volume_mode="median")  # type: ignore[arg-type]


def test_forecaster_param_schemas_match_the_constructors():
    """registry.FORECASTER_PARAMS checks `baseline: [{name: linear, params: ...}]` at load time: its fields and
    defaults must be the constructors' keyword-only options."""
    import inspect

    from kronos_quant.forecasters import BASELINES
    from kronos_quant.registry import FORECASTER_PARAMS

    assert set(FORECASTER_PARAMS) == set(BASELINES)
    for name, cls in BASELINES.items():
        options = {k: p for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"}
        fields = FORECASTER_PARAMS[name].model_fields
        assert set(fields) == set(options), name
        for key, field in fields.items():
            assert field.default == options[key].default, (name, key)


def test_random_walk_is_a_price_martingale_with_noise_free_summaries():
    """Regression (audit of issue 15, A/B): the random walk's close_mean was the mean of S sample paths
    (a noisy, seed-dependent 'expected return' ranking names by volatility); it is now exactly the last
    close, the same for every seed, temperature and sample count."""
    windows = [make_window(80, seed=1, vol=0.03), make_window(60, seed=2, vol=0.005)]
    a = run(RandomWalkForecaster(), windows, horizon=5, samples=8, seeds=[1, 2])
    b = run(RandomWalkForecaster(), windows, horizon=5, samples=3, seeds=[7, 9], temperature=1.7)
    for res in (a, b):
        np.testing.assert_array_equal(res.mean[..., CLOSE], np.repeat(res.last_close[:, None], 5, axis=1))
        np.testing.assert_array_equal(res.exact["close_mean"], res.mean[..., CLOSE])
    sigma = np.array([np.std(np.diff(np.log(w[:, CLOSE])), ddof=1) for w in windows])  # (B,)
    s = sigma[:, None] * np.sqrt(np.arange(1, 6))[None, :]  # (B, H)
    np.testing.assert_allclose(a.prob_up, stats.norm.cdf(-s / 2), rtol=1e-12)  # P[C_h > C_0], C log-normal martingale
    np.testing.assert_allclose(a.median[..., CLOSE], a.last_close[:, None] * np.exp(-s**2 / 2), rtol=1e-12)
    c = run(RandomWalkForecaster(), windows, horizon=5, samples=8, seeds=[3, 4])
    for name in a.exact:
        np.testing.assert_array_equal(a.exact[name], c.exact[name])  # no seed dependence
    assert not np.array_equal(a.paths, c.paths)  # the paths still differ by seed (CRPS, coverage)


@pytest.mark.parametrize("cls", ALL)
def test_exact_summaries_match_a_large_monte_carlo_of_the_paths(cls):
    """The closed forms against the forecaster's own sample paths (200k of them)."""
    w = make_window(120, seed=5, drift=0.001, vol=0.02, phi=0.3)
    res = run(cls(), [w], horizon=3, samples=200_000, seeds=[11])
    close = res.paths[0, :, :, CLOSE]  # (S, H)
    np.testing.assert_allclose(res.exact["close_mean"][0], close.mean(axis=0), rtol=2e-4)
    np.testing.assert_allclose(res.exact["close_median"][0], np.median(close, axis=0), rtol=3e-4)
    np.testing.assert_allclose(res.exact["close_q5"][0], np.quantile(close, 0.05, axis=0), rtol=5e-4)
    np.testing.assert_allclose(res.exact["prob_up"][0], (close > w[-1, CLOSE]).mean(axis=0), atol=4e-3)
    opens = res.paths[0, :, :, OPEN]
    np.testing.assert_allclose(res.exact["open_mean"][0], opens.mean(axis=0), rtol=2e-4)
    assert res.exact["open_median"][0, 0] == w[-1, CLOSE]


def test_exact_summaries_reach_the_forecast_table():
    """The rolling engine's table takes the forecaster's exact summaries (the engine stays model-agnostic)."""
    from kronos_quant.engine import rolling_forecast
    from tests.conftest import make_panel

    panel = make_panel(3, n_days=60)
    tables = [rolling_forecast(panel, RandomWalkForecaster(), lookback=20, horizon=3, keep_samples=True,
                               sampling=SamplingSpec(samples=4, seed=seed)) for seed in (0, 1)]
    for table in tables:
        np.testing.assert_array_equal(table["close_mean"].to_numpy(), table["last_close"].to_numpy())
        assert (table["prob_up"] < 0.5).all() and (table["close_median"] < table["close_mean"]).all()
    assert tables[0]["prob_up"].to_list() == tables[1]["prob_up"].to_list()
    assert tables[0]["close_samples"].to_list() != tables[1]["close_samples"].to_list()
    with pytest.raises(ValueError, match="not a forecast-table summary column"):
        ForecastResult(paths=np.ones((1, 2, 3, 6)), last_close=np.ones(1), exact={"close_mode": np.ones((1, 3))})
