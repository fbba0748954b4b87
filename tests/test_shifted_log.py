"""The ``shifted_log`` transform: yields near zero move less, and no path crosses the -0.5 % floor."""
from __future__ import annotations

import numpy as np
import pytest

from forecaster.market.transforms import ShiftedLog, ShiftedLogWide, get


@pytest.mark.parametrize("name, series", [("shifted_log", "UST3M"), ("shifted_log1", "UST2Y")])
def test_round_trip_on_the_real_short_yields(shared_panel, name, series):
    t = get(name)
    x = shared_panel[series].dropna().to_numpy()
    v = t.forward(x)
    assert np.isnan(v[0]) and np.isfinite(v[1:]).all()  # 0.00 % (Dec 2008) has a log: the floor is -0.5 %
    np.testing.assert_allclose(t.integrate(x[0], v[1:]), x[1:], atol=1e-9)
    np.testing.assert_allclose(t.step(x[:-1], v[1:]), x[1:], atol=1e-9)
    np.testing.assert_allclose(t.value_for_level(x[:-1], x[1:]), v[1:], atol=1e-9)
    np.testing.assert_allclose(t.change_from_origin(x[5], x[0]), np.nansum(v[1:6]), atol=1e-9)


@pytest.mark.parametrize("t", [ShiftedLog(), ShiftedLogWide()], ids=lambda t: t.name)
def test_no_sampled_path_crosses_the_floor_and_moves_shrink_near_it(t):
    rng = np.random.default_rng(0)
    steps = rng.standard_t(3, size=(200, 250)) * 8.0  # fat-tailed log changes, 8 % a day
    paths = t.integrate(0.05, steps)
    assert paths.min() > -t.SHIFT
    # the same model value moves a 5 % yield ten times as much as a 0.05 % one
    assert (t.step(5.0, 1.0) - 5.0) / (t.step(0.05, 1.0) - 0.05) == pytest.approx((5 + t.SHIFT) / (0.05 + t.SHIFT))


def test_a_level_at_or_below_the_floor_has_no_value():
    t = get("shifted_log")
    v = t.forward(np.array([0.1, -0.5, 0.2]))
    assert np.isnan(v[1]) and np.isnan(v[2])
