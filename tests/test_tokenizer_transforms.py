"""The float transforms: monotone, invertible, and equal to their textbook definitions."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from forecaster.core.tokenizer.errors import SpecError
from forecaster.core.tokenizer.transforms import TRANSFORMS, Quantile, YeoJohnson, fit_transform, transform_from_dict

RNG = np.random.default_rng(0)
DATA = {
    "student_t": RNG.standard_t(3, 20_000),
    "cauchy": RNG.standard_cauchy(20_000),
    "zero_inflated": np.where(RNG.random(20_000) < 0.8, 0.0, RNG.normal(size=20_000)),
    "lognormal": RNG.lognormal(0, 3, 20_000),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@pytest.mark.parametrize("data", sorted(DATA))
def test_monotone_and_invertible(name, data):
    x = DATA[data]
    if name == "log":
        x = np.abs(x) + 1e-6
    if name == "log1p":
        x = np.abs(x)
    tr = fit_transform(name, x, "x")
    xs = np.sort(x)
    t = tr.forward(xs)
    assert np.all(np.isfinite(t)) and np.all(np.diff(t) >= 0)
    back = tr.inverse(t)
    scale = np.maximum(np.abs(xs), 1.0)
    if name != "quantile":  # quantile is exact only at its knots, and where it is strictly increasing
        assert np.all(np.abs(back - xs) <= 1e-9 * scale)
    # a fitted transform survives its JSON form
    again = transform_from_dict(tr.to_dict())
    np.testing.assert_array_equal(again.forward(xs), t)


@pytest.mark.parametrize("lmbda", [0.0, 0.4, 1.0, 1.6, 2.0])
def test_yeo_johnson_matches_scipy(lmbda):
    x = DATA["student_t"]
    np.testing.assert_allclose(YeoJohnson(lmbda)._raw_forward(x), stats.yeojohnson(x, lmbda=lmbda), rtol=1e-12, atol=1e-12)


def test_yeo_johnson_lambda_stays_where_the_inverse_is_defined():
    tr = fit_transform("yeo_johnson", DATA["lognormal"], "x")  # MLE lambda would be negative
    assert 0.0 <= tr.lmbda <= 2.0
    assert np.all(np.isfinite(tr.inverse(np.linspace(-50, 50, 101))))


@pytest.mark.parametrize("data", sorted(DATA))
def test_quantile_fast_path_equals_interp(data):
    q = Quantile.fit(DATA[data], "x", n_quantiles=1000, headroom=0.1)
    probe = np.concatenate([RNG.choice(DATA[data], 50_000), q.xk, [-1e300, 1e300, q.xk[0] - 1, q.xk[-1] + 1]])
    np.testing.assert_array_equal(q.forward(probe), np.interp(probe, q.xk, q.pk))
    assert q.pk[0] == 0.0 and q.pk[-1] == 1.0 and q.xk[0] < DATA[data].min() and q.xk[-1] > DATA[data].max()


def test_domain_errors_are_typed():
    with pytest.raises(SpecError, match="positive"):
        fit_transform("log", np.array([1.0, 0.0]), "price")
    with pytest.raises(SpecError, match="> -1"):
        fit_transform("log1p", np.array([-2.0, 1.0]), "x")
    with pytest.raises(SpecError, match="unknown transform"):
        fit_transform("boxcox", np.array([1.0]), "x")
