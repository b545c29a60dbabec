"""Point-forecast accuracy: hand examples and scikit-learn cross-checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from kronos_quant.metrics import (
    directional_accuracy,
    forecast_accuracy,
    mean_absolute_error,
    mean_squared_error,
)


def test_errors_hand_example_and_nan() -> None:
    assert mean_squared_error([1, 2, 3], [1, 4, 0]) == pytest.approx(13 / 3)
    assert mean_absolute_error([1, 2, 3], [1, 4, 0]) == pytest.approx(5 / 3)
    assert mean_squared_error([1, np.nan, 3, 5], [1, 4, 0, np.nan]) == pytest.approx(9 / 2)
    assert np.isnan(mean_absolute_error([np.nan], [1.0]))
    with pytest.raises(ValueError, match="shape"):
        mean_squared_error([1, 2], [1, 2, 3])


def test_errors_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    pred, actual = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    assert mean_squared_error(pred, actual) == pytest.approx(
        skm.mean_squared_error(actual.ravel(), pred.ravel())
    )
    assert mean_absolute_error(pred, actual) == pytest.approx(
        skm.mean_absolute_error(actual.ravel(), pred.ravel())
    )


def test_directional_accuracy_hand_example() -> None:
    # hit, miss, miss, no call (miss), actual flat (excluded)
    assert directional_accuracy([1, -1, 0.5, 0, 2], [2, 1, -1, 3, 0]) == pytest.approx(0.25)
    assert np.isnan(directional_accuracy([1.0], [0.0]))


def test_forecast_accuracy_hand_example() -> None:
    last = np.array([100.0, 50.0])  # broadcast along the horizon axis
    pred = np.array([[110.0, 90.0], [55.0, 50.0]])
    actual = np.array([[105.0, 100.0], [45.0, 60.0]])
    out = forecast_accuracy(pred, actual, last)
    assert out["return_mse"] == pytest.approx(0.023125)
    assert out["return_mae"] == pytest.approx(0.1375)
    assert out["return_mse_rw"] == pytest.approx(0.013125)
    assert out["return_mae_rw"] == pytest.approx(0.0875)
    assert out["return_mse_skill"] == pytest.approx(0.023125 / 0.013125)
    assert out["price_mse"] == pytest.approx(81.25)
    assert out["price_mae"] == pytest.approx(8.75)
    assert out["price_mse_rw"] == pytest.approx(37.5)
    assert out["price_mae_rw"] == pytest.approx(5.0)
    assert out["price_mae_skill"] == pytest.approx(1.75)
    assert out["directional_accuracy"] == pytest.approx(1 / 3)
    assert out["n"] == 4


def test_forecast_accuracy_baselines() -> None:
    rng = np.random.default_rng(2)
    last = rng.uniform(10, 20, size=8)
    actual = last[:, None] * (1 + rng.normal(0, 0.02, size=(8, 5)))
    perfect = forecast_accuracy(actual, actual, last)
    assert perfect["return_mse_skill"] == pytest.approx(0.0) and perfect["directional_accuracy"] == 1.0
    rw = forecast_accuracy(np.repeat(last[:, None], 5, axis=1), actual, last)
    assert rw["price_mse_skill"] == pytest.approx(1.0) and rw["return_mae_skill"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="last_price"):
        forecast_accuracy(actual, actual, last[:3])
