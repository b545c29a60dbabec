"""The metrics and calibration packages re-export every public name of their submodules, once."""

from __future__ import annotations

import pytest

import kronos_quant.calibration as calibration
import kronos_quant.metrics as metrics


@pytest.mark.parametrize("package", [metrics, calibration], ids=["metrics", "calibration"])
def test_all_is_composed_from_the_submodules(package) -> None:
    names = package.__all__
    assert len(names) == len(set(names)), "two submodules export the same name"
    for name in names:
        assert getattr(package, name) is not None
    assert {"hac_mean_test", "diebold_mariano", "sharpe_ratio_ci", "deflated_sharpe_ratio", "rank_histogram",
            "brier_decomposition", "ic_summary", "sharpe_ratio"} <= set(metrics.__all__)
    assert {"recalibrate_walk_forward", "recalibrate_prob_up_walk_forward", "coverage_report"} <= set(calibration.__all__)


def test_statistics_results_are_json_serialisable() -> None:
    """metrics.json takes these dicts as they are: plain ints, floats, bools, strings, lists."""
    import json

    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    y, r = rng.normal(size=100), rng.normal(0.001, 0.01, 300)
    idx = pd.bdate_range("2020-01-01", periods=100)
    fwd, prob = pd.DataFrame(rng.normal(size=(100, 5)), index=idx), pd.DataFrame(rng.random((100, 5)), index=idx)
    table = pd.DataFrame({"asof": np.repeat(idx, 2), "step": np.tile([1, 2], 100), "a": rng.random(200), "b": rng.random(200)})
    results = [
        metrics.ic_summary(pd.Series(y), horizon=5),
        metrics.diebold_mariano_table(table, model_col="a", baseline_col="b"),
        metrics.sharpe_difference_ci(r, r + rng.normal(0, 0.001, 300), n_resamples=100),
        metrics.deflated_sharpe_ratio(r, n_trials=10),
        metrics.finite_sample_coverage(rng.normal(size=(50, 8)), rng.normal(size=50)),
        metrics.rank_histogram(rng.normal(size=(50, 8)), rng.normal(size=50)),
        metrics.directional_accuracy_test(prob, fwd, horizon=5, baseline_prob=prob.iloc[:, ::-1].set_axis(prob.columns, axis=1)),
        metrics.probability_scores(prob, fwd, climatology=0.5 + 0 * prob, horizon=5),
        metrics.hac_mean_test([1.0]),
    ]
    for result in results:
        json.dumps(result)
