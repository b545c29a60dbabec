"""Portfolio construction: top-k, top-k dropout (n_drop, min_hold), long-short, threshold, caps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos_quant.errors import ConfigError
from kronos_quant.portfolio import (
    PORTFOLIOS,
    build_weights,
    every_nth_rebalance,
    long_short_quantile,
    threshold_weights,
    topk_dropout,
    topk_equal_weight,
)

DATES = pd.date_range("2024-01-01", periods=4, freq="D")


def _held(weights: pd.DataFrame) -> list[set[str]]:
    return [set(row.index[row > 0]) for _, row in weights.iterrows()]


def test_topk_equal_weight_with_cash_buffer_and_cap() -> None:
    scores = pd.DataFrame([[3.0, 1.0, 2.0, np.nan], [np.nan] * 4, [0.0, 5.0, np.nan, 1.0]],
                          index=DATES[:3], columns=list("abcd"))
    w = topk_equal_weight(scores, k=2, cash_buffer=0.1)
    assert w.iloc[0].tolist() == pytest.approx([0.45, 0.0, 0.45, 0.0])
    assert w.iloc[1].isna().all()  # no scores: no rebalance
    assert w.iloc[2].tolist() == pytest.approx([0.0, 0.45, 0.0, 0.45])
    capped = build_weights("topk", scores, k=2, max_weight=0.3)
    assert capped.iloc[0].max() == pytest.approx(0.3) and capped.iloc[0].sum() == pytest.approx(0.6)
    few = topk_equal_weight(scores.iloc[:1], k=4)
    assert few.iloc[0].tolist() == pytest.approx([0.25, 0.25, 0.25, 0.0])


def test_topk_dropout_replaces_at_most_n_drop() -> None:
    cols = list("abcdefgh")
    first = [8, 7, 6, 5, 4, 3, 2, 1]
    flipped = [1, 2, 3, 4, 5, 6, 7, 8]  # every held name becomes the worst
    scores = pd.DataFrame([first, flipped, flipped, flipped], index=DATES, columns=cols, dtype=float)
    w = topk_dropout(scores, k=4, n_drop=1)
    held = _held(w)
    assert held[0] == {"a", "b", "c", "d"}
    for before, after in zip(held, held[1:]):
        assert len(after) == 4 and len(before - after) <= 1
    assert held[1] == {"b", "c", "d", "h"}  # the worst held name 'a' is swapped for the best new 'h'
    assert held[3] == {"d", "h", "g", "f"}
    assert w.iloc[0].sum() == pytest.approx(1.0)
    w2 = topk_dropout(scores, k=4, n_drop=2)
    assert _held(w2)[1] == {"c", "d", "h", "g"}


def test_topk_dropout_min_hold_blocks_early_sells() -> None:
    cols = list("abcd")
    scores = pd.DataFrame([[4, 3, 2, 1], [1, 3, 2, 4], [1, 3, 2, 4], [1, 3, 2, 4]],
                          index=DATES, columns=cols, dtype=float)
    w = topk_dropout(scores, k=2, n_drop=1, min_hold=3)
    held = _held(w)
    assert held[0] == {"a", "b"}
    assert held[1] == {"a", "b"} and held[2] == {"a", "b"}  # 'a' held for fewer than 3 rebalances
    assert held[3] == {"b", "d"}
    free = _held(topk_dropout(scores, k=2, n_drop=1, min_hold=1))
    assert free[1] == {"b", "d"}


def test_topk_dropout_nan_row_keeps_book() -> None:
    scores = pd.DataFrame([[3.0, 2.0, 1.0], [np.nan] * 3, [1.0, 2.0, 3.0]], index=DATES[:3], columns=list("abc"))
    w = topk_dropout(scores, k=1, n_drop=1)
    assert w.iloc[1].isna().all()
    assert _held(w)[2] == {"c"}


def test_long_short_quantile() -> None:
    scores = pd.DataFrame([[5.0, 4.0, 3.0, 2.0, 1.0, np.nan]], index=DATES[:1], columns=list("abcdef"))
    w = long_short_quantile(scores, quantile=0.4, cash_buffer=0.2)
    assert w.iloc[0, :5].tolist() == pytest.approx([0.2, 0.2, 0.0, -0.2, -0.2])
    assert w.iloc[0, 5] == 0.0
    assert w.iloc[0].sum() == pytest.approx(0.0) and w.iloc[0].abs().sum() == pytest.approx(0.8)


def test_threshold_long_flat_short_single_instrument() -> None:
    scores = pd.DataFrame({"x": [0.7, 0.5, 0.2, np.nan]}, index=DATES)
    w = threshold_weights(scores, long_above=0.6, short_below=0.4, cash_buffer=0.05)
    assert w["x"].iloc[:3].tolist() == pytest.approx([0.95, 0.0, -0.95])
    assert np.isnan(w["x"].iloc[3])
    assert build_weights("threshold", scores, long_above=0.6, max_weight=0.5)["x"].iloc[0] == pytest.approx(0.5)


def test_registry_and_validation() -> None:
    scores = pd.DataFrame([[1.0, 2.0]], index=DATES[:1], columns=["a", "b"])
    assert set(PORTFOLIOS) == {"topk", "topk_dropout", "long_short", "threshold"}
    with pytest.raises(ValueError, match="did you mean 'topk_dropout'"):
        build_weights("topk_dropot", scores, k=1)
    with pytest.raises(ConfigError, match="portfolio 'topk' has no parameter 'n_drop'"):
        build_weights("topk", scores, k=1, n_drop=2)
    with pytest.raises(ConfigError, match="portfolio 'topk' parameter 'k': Input should be a valid integer"):
        build_weights("topk", scores, k="two")
    with pytest.raises(ConfigError, match="needs parameter 'n_drop'"):
        build_weights("topk_dropout", scores, k=1)
    with pytest.raises(ValueError, match="cash_buffer"):
        topk_equal_weight(scores, k=1, cash_buffer=1.0)
    with pytest.raises(ValueError, match="max_weight"):
        topk_equal_weight(scores, k=1, max_weight=0.0)
    assert list(every_nth_rebalance(pd.DataFrame(index=DATES), every=2).index) == [DATES[0], DATES[2]]


def test_registry_schemas_match_the_constructors() -> None:
    """The load-time parameter schemas (kronos_quant.registry) describe the real keyword options."""
    import inspect

    from kronos_quant.registry import PORTFOLIO_PARAMS

    assert set(PORTFOLIO_PARAMS) == set(PORTFOLIOS)
    for name, func in PORTFOLIOS.items():
        options = {p.name: p for p in list(inspect.signature(func).parameters.values())[1:]
                   if p.name not in ("max_weight", "cash_buffer", "tiebreak")}
        fields = PORTFOLIO_PARAMS[name].model_fields
        assert set(fields) == set(options), name
        for key, field in fields.items():
            required = options[key].default is inspect.Parameter.empty
            assert field.is_required() == required, (name, key)
            if not required:
                assert field.default == options[key].default, (name, key)


def test_k_larger_than_the_eligible_universe_warns(caplog) -> None:
    scores = pd.DataFrame({"a": [1.0, 2.0], "b": [0.5, np.nan], "c": [np.nan, np.nan]}, index=DATES[:2])
    with caplog.at_level("WARNING", logger="kronos_quant.portfolio"):
        w = build_weights("topk", scores, k=5)
    assert "k=5 but only 2 instrument(s) were eligible" in caplog.text
    assert w.loc[DATES[0], "a"] == pytest.approx(0.2)  # 1/k each; the rest stays in cash
    caplog.clear()
    with caplog.at_level("WARNING", logger="kronos_quant.portfolio"):
        build_weights("topk_dropout", scores, k=3, n_drop=1)
        build_weights("topk", scores, k=2)
    assert caplog.text.count("were eligible") == 1


def _tied() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Winsorized-like scores: a, b, c tie for the top; the raw scores rank them c > b > a (column order a, b, c)."""
    idx = pd.to_datetime(["2024-01-02", "2024-01-03"])
    scores = pd.DataFrame({"a": [1.0, 1.0], "b": [1.0, 1.0], "c": [1.0, 1.0], "d": [0.0, -1.0]}, index=idx)
    raw = pd.DataFrame({"a": [0.10, 0.30], "b": [0.20, 0.20], "c": [0.30, 0.10], "d": [0.0, -1.0]}, index=idx)
    return scores, raw


def test_topk_ties_are_broken_by_the_raw_score_never_by_column_order():
    scores, raw = _tied()
    w = topk_equal_weight(scores, k=2, tiebreak=raw)
    assert w.iloc[0].tolist() == [0.0, 0.5, 0.5, 0.0]  # c and b: the two best raw scores
    assert w.iloc[1].tolist() == [0.5, 0.5, 0.0, 0.0]  # raw order reversed: a and b
    reordered = topk_equal_weight(scores[["c", "b", "a", "d"]], k=2, tiebreak=raw)
    pd.testing.assert_frame_equal(reordered[w.columns], w)  # the same holdings whatever the column order
    # tied on both: the remaining slot is shared, not given to the first column
    shared = topk_equal_weight(scores, k=2, tiebreak=raw.assign(a=0.3, b=0.3, c=0.3))
    assert shared.iloc[0].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0])
    assert shared.iloc[0].sum() == pytest.approx(1.0)
    assert topk_equal_weight(scores, k=2).iloc[0].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0])


def test_long_short_and_dropout_use_the_tiebreak():
    scores, raw = _tied()
    ls = long_short_quantile(scores, quantile=0.25, tiebreak=raw)  # one name per leg
    assert ls.iloc[0].tolist() == [0.0, 0.0, 0.5, -0.5] and ls.iloc[1].tolist() == [0.5, 0.0, 0.0, -0.5]
    assert build_weights("long_short", scores, quantile=0.25, tiebreak=raw).equals(ls)
    drop = topk_dropout(scores.iloc[:1], k=2, n_drop=1, tiebreak=raw)
    assert drop.iloc[0].tolist() == [0.0, 0.5, 0.5, 0.0]
    assert build_weights("topk", scores, k=2, tiebreak=raw).equals(topk_equal_weight(scores, k=2, tiebreak=raw))
