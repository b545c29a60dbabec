"""Signal-quality metrics: hand-computed examples and scipy cross-checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kronos_quant.metrics import (
    ic_summary,
    information_coefficient,
    quantile_returns,
    quantile_spread,
    rank_autocorrelation,
    rank_information_coefficient,
    signal_turnover,
)

DATES = pd.date_range("2021-01-04", periods=4, freq="B")


def _frame(rows: list[list[float]], columns: str = "ABCD") -> pd.DataFrame:
    return pd.DataFrame(rows, index=DATES[: len(rows)], columns=list(columns[: len(rows[0])]))


def test_ic_hand_example() -> None:
    scores = _frame([[1, 2, 3, 4], [1, 2, 3, 4], [4, 3, 2, 1]])
    fwd = _frame([[1, 3, 2, 4], [10, 20, 30, 40], [0.1, 0.2, 0.3, 0.4]])
    # date 0: dx = dy-permuted (-1.5, -.5, .5, 1.5) -> cov 4, var 5 -> 0.8
    np.testing.assert_allclose(information_coefficient(scores, fwd).to_numpy(), [0.8, 1.0, -1.0])
    np.testing.assert_allclose(rank_information_coefficient(scores, fwd).to_numpy(), [0.8, 1.0, -1.0])


def test_ic_pairwise_nan_and_min_obs() -> None:
    scores = _frame([[1, np.nan, 3, 4, 5], [1, 2, np.nan, np.nan, 5], [1, 1, 1, 1, 1]], "ABCDE")
    fwd = _frame([[2, 1, np.nan, 8, 9], [1, 2, 3, 4, np.nan], [1, 2, 3, 4, 5]], "ABCDE")
    ic = information_coefficient(scores, fwd)
    # date 0 keeps pairs A, D, E; date 1 has only A, B (dropped); date 2 has constant scores (NaN kept)
    assert list(ic.index) == [DATES[0], DATES[2]]
    assert ic.iloc[0] == pytest.approx(stats.pearsonr([1, 4, 5], [2, 8, 9]).statistic)
    assert np.isnan(ic.iloc[1])
    assert len(information_coefficient(scores, fwd, min_obs=2)) == 3


def test_ic_matches_scipy_per_date() -> None:
    rng = np.random.default_rng(0)
    idx = pd.date_range("2020-01-01", periods=12, freq="B")
    scores = pd.DataFrame(rng.normal(size=(12, 15)), index=idx)
    fwd = 0.3 * scores + pd.DataFrame(rng.normal(size=(12, 15)), index=idx)
    scores = scores.mask(rng.random(scores.shape) < 0.15)
    fwd = fwd.mask(rng.random(fwd.shape) < 0.15)
    fwd.iloc[3, :5] = 1.0  # ties in returns exercise average ranks
    pearson = information_coefficient(scores, fwd)
    spearman = rank_information_coefficient(scores, fwd)
    for date in idx:
        ok = scores.loc[date].notna() & fwd.loc[date].notna()
        x, y = scores.loc[date][ok], fwd.loc[date][ok]
        assert pearson[date] == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
        assert spearman[date] == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_ic_aligns_on_index_and_columns() -> None:
    rng = np.random.default_rng(1)
    scores = pd.DataFrame(
        rng.normal(size=(5, 6)), index=pd.date_range("2020", periods=5), columns=list("abcdef")
    )
    fwd = pd.DataFrame(rng.normal(size=(5, 6)), index=scores.index, columns=list("abcdef"))
    shuffled = fwd[list("fedcba")].iloc[::-1]
    shuffled["zzz"] = 1.0  # an instrument without scores is ignored
    pd.testing.assert_series_equal(
        information_coefficient(scores, fwd), information_coefficient(scores, shuffled)
    )


def test_ic_rejects_bad_input() -> None:
    scores = _frame([[1, 2, 3]])
    with pytest.raises(ValueError, match="wide pandas DataFrame"):
        information_coefficient(scores.to_numpy(), scores)
    with pytest.raises(ValueError, match="method"):
        information_coefficient(scores, scores, method="kendall")
    with pytest.raises(ValueError, match="share no"):
        information_coefficient(scores, scores.rename(columns=str.lower))


def test_ic_summary_hand_example() -> None:
    out = ic_summary(pd.Series([0.1, 0.2, -0.1, 0.2, np.nan]))
    std = np.sqrt(0.06 / 3)
    assert out["n"] == 4
    assert out["mean"] == pytest.approx(0.1)
    assert out["std"] == pytest.approx(std)
    assert out["icir"] == pytest.approx(0.1 / std)
    assert out["t_stat_iid"] == pytest.approx(0.1 / (std / 2))
    assert out["p_value_iid"] == pytest.approx(stats.ttest_1samp([0.1, 0.2, -0.1, 0.2], 0.0).pvalue)
    # Newey-West with floor(4 (4/100)^(2/9)) = 1 lag: e = (0, .1, -.2, .1), gamma0 = .06/4,
    # gamma1 = -.04/4, LRV = .015 + 2 * (1/2) * (-.01) = .005, se = sqrt(.005 / 4) -> t = 2 sqrt(2)
    assert out["nw_lags"] == 1
    assert out["t_stat"] == pytest.approx(2 * np.sqrt(2))
    assert out["p_value"] == pytest.approx(2 * stats.t.sf(2 * np.sqrt(2), 3))
    assert out["hit_rate"] == pytest.approx(0.75)
    empty = ic_summary(pd.Series([], dtype=float))
    assert empty["n"] == 0 and np.isnan(empty["mean"])
    single = ic_summary(pd.Series([0.3]))
    assert single["mean"] == pytest.approx(0.3) and np.isnan(single["icir"])


def test_quantile_returns_hand_example() -> None:
    scores = _frame([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [1, 2, np.nan, np.nan, np.nan, 3]], "ABCDEF")
    fwd = _frame([[10, 20, 30, 40, 50, 60]] * 3, "ABCDEF")
    q = quantile_returns(scores, fwd, n_quantiles=3)
    assert list(q.columns) == [1, 2, 3]
    assert list(q.index) == list(DATES[:3])  # 3 valid pairs on the last date are enough for 3 buckets
    np.testing.assert_allclose(q.iloc[0], [15, 35, 55])
    np.testing.assert_allclose(q.iloc[1], [55, 35, 15])
    np.testing.assert_allclose(q.iloc[2], [10, 20, 60])
    spread = quantile_spread(scores, fwd, n_quantiles=3)
    np.testing.assert_allclose(spread.to_numpy(), [40, -40, 50])
    assert len(quantile_returns(scores, fwd, n_quantiles=4)) == 2  # last date has too few names


def test_quantile_returns_ties_share_a_bucket() -> None:
    scores = _frame([[1, 1, 1, 1, 2, 2]], "ABCDEF")
    fwd = _frame([[1, 2, 3, 4, 10, 20]], "ABCDEF")
    q = quantile_returns(scores, fwd, n_quantiles=2)
    np.testing.assert_allclose(q.iloc[0], [2.5, 15.0])


def test_signal_turnover_convention() -> None:
    weights = _frame([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [np.nan, np.nan, 1.0], [-1.0, 0.0, 1.0]], "ABC")
    t = signal_turnover(weights)
    assert np.isnan(t.iloc[0])
    np.testing.assert_allclose(t.iloc[1:].to_numpy(), [0.5, 0.5, 0.5])
    full_swap = signal_turnover(_frame([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]]))
    assert full_swap.iloc[1] == pytest.approx(1.0)


def test_rank_autocorrelation() -> None:
    stable = _frame([[1, 2, 3, 4], [10, 20, 30, 40], [5, 6, 7, 8]])
    flips = _frame([[1, 2, 3, 4], [4, 3, 2, 1], [1, 2, 3, 4]])
    np.testing.assert_allclose(rank_autocorrelation(stable).to_numpy(), [1.0, 1.0])
    np.testing.assert_allclose(rank_autocorrelation(flips).to_numpy(), [-1.0, -1.0])
    lag2 = rank_autocorrelation(flips, lag=2)
    assert list(lag2.index) == [DATES[2]] and lag2.iloc[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="lag"):
        rank_autocorrelation(flips, lag=0)
