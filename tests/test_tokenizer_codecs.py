"""Property tests of the column codecs over random columns (Hypothesis).

decode(encode(x)) stays within the codec's reported bound (on the fit data and on
fresh values inside the fitted range), missing values and categories round-trip
exactly, every id stays inside its slot's range, and decoding is unbiased.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecaster.core.tokenizer import CategoryCodec, ColumnSpec, DatetimeCodec, FloatCodec, IntCodec, SpecError, fit_codec
from forecaster.core.tokenizer.transforms import TRANSFORMS

# TOKENIZER_EXAMPLES=2000 runs a long stress pass locally; CI uses the fast default.
FAST = settings(max_examples=int(os.environ.get("TOKENIZER_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAMILIES = ["normal", "student_t", "lognormal", "negative", "constant", "zero_inflated", "all_nan", "two_points", "uniform"]


def make_column(family: str, n: int, log10_scale: float, nan_frac: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = 10.0**log10_scale
    x = {
        "normal": lambda: rng.normal(0, 1, n),
        "student_t": lambda: rng.standard_t(1.5, n),  # very heavy tails
        "lognormal": lambda: rng.lognormal(0, 2, n),
        "negative": lambda: -rng.lognormal(0, 1, n),
        "constant": lambda: np.full(n, 3.7),
        "zero_inflated": lambda: np.where(rng.random(n) < 0.8, 0.0, rng.standard_t(3, n)),
        "all_nan": lambda: np.full(n, np.nan),
        "two_points": lambda: rng.choice([-1.0, 2.5], n),
        "uniform": lambda: rng.uniform(-1, 1, n),
    }[family]() * scale
    x[rng.random(n) < nan_frac] = np.nan
    return x


def domain_ok(transform: str, x: np.ndarray) -> np.ndarray:
    """Shift a column into the transform's domain (log needs > 0, log1p > -1)."""
    if transform == "log":
        return np.abs(x) + 1e-3 * np.nanmax(np.abs(x), initial=1.0) + 1e-300
    if transform == "log1p":
        return np.abs(x)
    return x


def check_slots(codec, ids: np.ndarray, offset: int) -> None:
    lo = codec.slot_starts() + offset
    hi = lo + np.asarray(codec.slot_sizes())
    assert ids.dtype == np.int64 and ids.shape[1] == codec.n_slots
    assert np.all((ids >= lo) & (ids < hi)), "an id left its slot's range"


columns = st.builds(
    make_column,
    family=st.sampled_from(FAMILIES),
    n=st.integers(1, 300),
    log10_scale=st.one_of(st.floats(-12, 12), st.floats(-250, 250)),
    nan_frac=st.sampled_from([0.0, 0.0, 0.1, 0.5]),
    seed=st.integers(0, 2**32 - 1),
)


@FAST
@given(x=columns, transform=st.sampled_from(sorted(TRANSFORMS)), base=st.sampled_from([2, 7, 10, 16, 64]), seed=st.integers(0, 2**16))
def test_float_round_trip_within_reported_bound(x, transform, base, seed):
    x = domain_ok(transform, x)
    try:
        codec = fit_codec("x", pd.Series(x), ColumnSpec(kind="float", transform=transform, base=base))
    except SpecError as exc:  # Yeo-Johnson's power overflows on huge magnitudes: a typed error is right
        assert transform == "yeo_johnson" and np.nanmax(np.abs(x)) > 1e100, exc
        return
    assert isinstance(codec, FloatCodec) and np.isfinite(codec.error_bound) and codec.error_bound >= 0
    ids, n_clamped = codec.encode(pd.Series(x), offset=5)
    check_slots(codec, ids, 5)
    assert n_clamped == 0, "fit data must lie inside the representable range"
    y, bad = codec.decode(ids - 5)
    assert y.dtype == np.float64 and not bad.any()
    y = y.to_numpy()
    assert np.array_equal(np.isnan(y), np.isnan(x)), "missing values must round-trip exactly"
    finite = ~np.isnan(x)
    assert np.all(np.abs(y[finite] - x[finite]) <= codec.error_bound)
    # the bound covers the whole fitted range, not only the values seen
    if finite.any():
        rng = np.random.default_rng(seed)
        fresh = rng.uniform(np.min(x[finite]), np.max(x[finite]), 500)
        ids2, clamped2 = codec.encode(pd.Series(fresh))
        assert clamped2 == 0
        assert np.all(np.abs(codec.decode(ids2)[0].to_numpy() - fresh) <= codec.error_bound)


@FAST
@given(values=st.lists(st.one_of(st.just(float("nan")), st.floats(min_value=-1e15, max_value=1e15)), min_size=1, max_size=50))
def test_float_round_trip_on_arbitrary_floats(values):
    x = np.array(values, dtype=np.float64)
    codec = fit_codec("x", pd.Series(x), ColumnSpec(kind="float", digits=3))
    ids, n_clamped = codec.encode(pd.Series(x))
    check_slots(codec, ids, 0)
    y = codec.decode(ids)[0].to_numpy()
    assert n_clamped == 0
    assert np.array_equal(np.isnan(y), np.isnan(x))
    ok = ~np.isnan(x)
    assert np.all(np.abs(y[ok] - x[ok]) <= codec.error_bound)


@FAST
@given(x=columns, headroom=st.sampled_from([0.0, 0.1, 1.0]))
def test_out_of_range_values_are_clamped_and_counted(x, headroom):
    codec = fit_codec("x", pd.Series(x), ColumnSpec(kind="float", headroom=headroom, nullable=True))
    probe = np.array([np.inf, -np.inf, 1e300, -1e300, codec.raw_hi, codec.raw_lo, np.nan])
    ids, n_clamped = codec.encode(pd.Series(probe))
    check_slots(codec, ids, 0)
    assert n_clamped == 4
    y = codec.decode(ids)[0].to_numpy()
    # clamped to the representable ends, never wrapped around
    np.testing.assert_array_equal(y[[0, 2, 4]], codec.decoded_hi)
    np.testing.assert_array_equal(y[[1, 3, 5]], codec.decoded_lo)
    assert codec.decoded_lo <= codec.decoded_hi
    assert np.isnan(y[6])


def test_precision_target_picks_enough_digits():
    x = np.random.default_rng(1).normal(0, 1, 5000)
    for target in (1e-1, 1e-3, 1e-5):
        codec = fit_codec("x", pd.Series(x), ColumnSpec(kind="float", precision=target))
        assert codec.error_bound <= target
        fewer = fit_codec("x", pd.Series(x), ColumnSpec(kind="float", digits=codec.layout.digits - 1)) if codec.layout.digits > 1 else None
        assert fewer is None or fewer.error_bound > target, "not the fewest digits"


@pytest.mark.parametrize("transform", ["none", "signed_log", "yeo_johnson", "robust", "quantile"])
def test_decoding_is_unbiased(transform):
    """Mean signed error in the binned (transformed) space is a tiny fraction of a bin."""
    x = np.random.default_rng(2).standard_t(4, 200_000)
    codec = fit_codec("x", pd.Series(x), ColumnSpec(kind="float", transform=transform, digits=2, base=16))
    ids, _ = codec.encode(pd.Series(x))
    y = codec.decode(ids)[0].to_numpy()
    t_err = codec.transform.forward(y) - codec.transform.forward(x)
    assert abs(t_err.mean()) < 0.02 * codec.width, "decoding is biased (a lower-edge decoder gives -0.5 of a bin)"
    if transform == "none":
        assert abs((y - x).mean()) < 0.02 * codec.width


def test_step_grid_and_anchor_decode_exactly():
    cents = np.round(np.random.default_rng(3).normal(50, 40, 2000), 2)
    cents[:100] = 0.0
    codec = fit_codec("amount", pd.Series(cents), ColumnSpec(kind="float", step=0.01))
    y = codec.decode(codec.encode(pd.Series(cents))[0])[0].to_numpy()
    np.testing.assert_array_equal(y, cents)  # the float nearest each cent value, zero exact
    returns = np.where(np.random.default_rng(4).random(1000) < 0.5, 0.0, np.random.default_rng(5).standard_t(3, 1000))
    codec = fit_codec("r", pd.Series(returns), ColumnSpec(kind="float", transform="signed_log", digits=2))
    y = codec.decode(codec.encode(pd.Series(returns))[0])[0].to_numpy()
    assert np.all(y[returns == 0] == 0.0)


ints = st.lists(st.one_of(st.none(), st.integers(-(2**40), 2**40)), min_size=1, max_size=100)


@FAST
@given(values=ints, base=st.sampled_from([2, 10, 16, 100]))
def test_int_round_trip_exact(values, base):
    s = pd.Series(values, dtype="Int64")
    codec = fit_codec("n", s, ColumnSpec(base=base))
    assert isinstance(codec, IntCodec)
    ids, n_clamped = codec.encode(s, offset=3)
    check_slots(codec, ids, 3)
    assert n_clamped == 0
    y, _ = codec.decode(ids - 3)
    pd.testing.assert_series_equal(y, s.reset_index(drop=True), check_dtype=codec.nullable)
    beyond = pd.Series([codec.hi + 10, codec.lo - 10], dtype="Int64")
    ids, n_clamped = codec.encode(beyond)
    assert n_clamped == 2 and list(codec.decode(ids)[0]) == [codec.hi, codec.lo]


cats = st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "Swipe Transaction", "", "é"])), min_size=1, max_size=60)


@FAST
@given(values=cats, unseen=st.lists(st.sampled_from(["zz", "new"]), max_size=5))
def test_category_round_trip_and_unknown(values, unseen):
    s = pd.Series(values, dtype=object)
    codec = fit_codec("c", s)
    assert isinstance(codec, CategoryCodec)
    ids, n_unknown = codec.encode(s, offset=7)
    check_slots(codec, ids, 7)
    assert n_unknown == 0
    y, _ = codec.decode(ids - 7)
    for a, b in zip(values, y):
        assert (a is None and pd.isna(b)) or a == b
    if unseen and codec.categories:
        ids, n_unknown = codec.encode(pd.Series(unseen, dtype=object))
        assert n_unknown == len(unseen) and np.all(ids == codec.unknown_id)
        assert codec.decode(ids)[0].isna().all()


def test_category_value_types_survive():
    for values, dtype in [([5300, 5411, None], "Int64"), ([True, False], "boolean"), ([0.5, 2.0, None], "float64"), (["x", None], "str")]:
        s = pd.Series(values, dtype=object)
        codec = fit_codec("c", s, ColumnSpec(kind="category"))
        y, _ = codec.decode(codec.encode(s)[0])
        assert str(y.dtype) == dtype
        assert [None if pd.isna(v) else v for v in y] == values


stamps = st.lists(
    st.one_of(st.none(), st.datetimes(min_value=pd.Timestamp("1990-01-01").to_pydatetime(), max_value=pd.Timestamp("2030-12-31").to_pydatetime())),
    min_size=1, max_size=60,
)  # fmt: skip


@FAST
@given(values=stamps, parts=st.sampled_from([None, ("year", "month", "day", "hour", "minute"), ("timestamp",)]))
def test_datetime_round_trip_within_bound(values, parts):
    s = pd.Series(pd.to_datetime(values))
    codec = fit_codec("when", s, ColumnSpec(parts=parts))
    assert isinstance(codec, DatetimeCodec)
    ids, n_clamped = codec.encode(s, offset=11)
    check_slots(codec, ids, 11)
    assert n_clamped == 0
    y, bad = codec.decode(ids - 11)
    assert not bad.any() and str(y.dtype) == "datetime64[ns]"
    assert np.array_equal(y.isna().to_numpy(), s.isna().to_numpy())
    ok = s.notna().to_numpy()
    err = np.abs((y[ok].to_numpy() - s[ok].to_numpy()).astype("timedelta64[ns]").astype(np.int64)) / 1e9
    assert np.all(err <= codec.error_bound)


def test_datetime_parts_clamp_and_repair_impossible_dates():
    s = pd.Series(pd.to_datetime(["2002-09-01 06:21", "2020-02-28 23:59"]))
    codec = fit_codec("when", s)
    assert codec.parts == ("year", "month", "day", "hour", "minute")
    ids, n_clamped = codec.encode(pd.Series(pd.to_datetime(["1950-01-01", "2100-06-01"])))
    assert n_clamped == 2
    y, _ = codec.decode(ids)
    assert y[0] == pd.Timestamp(f"{codec.year_lo}-01-01") and y[1] == pd.Timestamp(f"{codec.year_hi}-12-31 23:59")
    ids, _ = codec.encode(pd.Series(pd.to_datetime(["2010-02-28"])))
    ids[0, 2] += 2  # day 28 -> 30 in February: repaired to the month's last day, never a bad row
    y, bad = codec.decode(ids)
    assert bad.tolist() == [False] and y[0] == pd.Timestamp("2010-02-28")
    ids[0, 1] += 1  # March 30 is a real date and stays
    assert codec.decode(ids)[0][0] == pd.Timestamp("2010-03-30")


@pytest.mark.parametrize("values", [[1e-300, 2e-300, 5e-301], [-1e300, 1e300], [1e12, 1e12 + 1e-3, 1e12 + 5e-4], [1e300, 1e300], [0.0, 2.2e-309, 5e-324]])
def test_extreme_magnitudes_round_trip(values):
    x = pd.Series(values)
    for transform in ("none", "signed_log", "quantile", "robust"):
        codec = fit_codec("x", x, ColumnSpec(kind="float", transform=transform))
        y = codec.decode(codec.encode(x)[0])[0].to_numpy()
        assert np.all(np.abs(y - x.to_numpy()) <= codec.error_bound), transform


@pytest.mark.parametrize("values, transform", [([-1.7e308, 1.7e308], "none"), ([-1.7e308, 1.7e308], "quantile"), ([-1e300, 1e300], "yeo_johnson")])
def test_unbinnable_columns_are_spec_errors(values, transform):
    with pytest.raises(SpecError, match="scale the column"):
        fit_codec("x", pd.Series(values), ColumnSpec(kind="float", transform=transform))
