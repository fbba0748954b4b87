"""The tokenizer on the real data: the market model frame and the TabFormer sample.

Both round-trip within their reported bounds, with nothing clamped on the fit
data; the market report command prints one row per series.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.core.tokenizer import TableTokenizer
from forecaster.market.tokenizer import DEFAULT_LEVELS, MAX_LEVELS, market_specs
from forecaster.synthesis.tokenizer import tabformer_specs


@pytest.fixture(scope="module")
def market_frame(shared_panel) -> pd.DataFrame:
    from forecaster.market.features import model_frame

    return model_frame(shared_panel)


@pytest.fixture(scope="module")
def market_tok(market_frame) -> TableTokenizer:
    """The finest market tokenizer (``--bins 512``): the precision claims below are for it."""
    return TableTokenizer.fit(market_frame, market_specs(market_frame, max_levels=MAX_LEVELS))


def test_the_default_64_bins_round_trip_returns_within_a_few_basis_points(market_frame):
    """The default (``--bins 64``): one token per series; S&P 500 returns within 5 bp on a typical day
    (median); yield changes within about 1 bp (linear bins), unemployment changes exact (0.1 grid)."""
    tok = TableTokenizer.fit(market_frame, market_specs(market_frame))
    rep = tok.report(market_frame)
    assert (rep["tokens"] == 1).all() and (rep["clamped"] == 0).all()
    returns = [c for c in market_frame if rep.loc[c, "codec"].startswith("float signed_log")]
    assert all(tok.codec(c).vocab_size <= DEFAULT_LEVELS + 1 for c in returns)  # + the missing token
    assert rep.loc["SPX", "median_error"] < 0.05
    for name in ("UST10Y", "UST2Y", "BAA_SPREAD"):
        assert rep.loc[name, "max_error"] <= 0.0112, name
    assert rep.loc["UNRATE", "max_error"] < 1e-9


def test_market_frame_round_trips_within_bounds(market_tok, market_frame):
    ids, clamped = market_tok.encode_with_report(market_frame)
    assert sum(clamped.values()) == 0
    back = market_tok.decode(market_tok.encode_sequence(market_frame))
    assert list(back.columns) == list(market_frame.columns) and len(back) == len(market_frame)
    for name in market_frame.columns:
        x, y = market_frame[name].to_numpy(), back[name].to_numpy()
        assert np.array_equal(np.isnan(x), np.isnan(y)), name
        ok = ~np.isnan(x)
        assert np.all(np.abs(y[ok] - x[ok]) <= market_tok.codec(name).error_bound), name
        assert np.all(y[ok & (x == 0)] == 0.0), f"{name}: zeros must decode exactly"


def test_market_defaults_are_compact_and_precise(market_tok, market_frame):
    rep = market_tok.report(market_frame)
    # one token per series, so a day is 22 tokens for the 21 reference series
    assert (rep["tokens"] == 1).all() and market_tok.tokens_per_row == len(market_frame.columns) + 1
    assert (rep["mismatches"] == 0).all() and (rep["clamped"] == 0).all()
    back = market_tok.decode(market_tok.encode(market_frame))
    # returns in percent: about 1 bp on a typical day (WTI's April 2020 range makes its bins
    # the coarsest: 1.2 bp median), growing like (1 + |r|) with the move
    returns = [c for c in market_frame if rep.loc[c, "codec"].startswith("float signed_log")]
    prices = [c for c in returns if c != "VIX"]
    assert prices and (rep.loc[prices, "median_error"] < 0.015).all()
    # VIX's log changes are about five times the S&P 500's, so their error (1 + |r|) is larger:
    # 2.3 bp of the level, 0.005 points at a VIX of 20
    assert "VIX" in returns and rep.loc["VIX", "median_error"] < 0.03
    for name in returns:
        x, y, w = market_frame[name].to_numpy(), back[name].to_numpy(), market_tok.codec(name).width
        ok = ~np.isnan(x)
        assert np.all(np.abs(y[ok] - x[ok]) <= (1 + np.abs(x[ok])) * np.expm1(w / 2) + 1e-12), name
    assert market_tok.codec("SPX").width <= 0.02  # S&P 500: a quiet day within 1 bp
    # 0.01-grid series (yield and spread changes) round-trip exactly
    for name in ("UST10Y", "UST2Y", "BAA_SPREAD", "UNRATE"):
        assert rep.loc[name, "max_error"] < 1e-9, name
    # VIX is modeled as its log change (issue 14), so no sampled level can be zero or negative
    assert rep.loc["VIX", "codec"].startswith("float signed_log")
    # no systematic bias: the mean signed error in the binned space is a small fraction of a bin
    for name in market_frame.columns:
        codec, x = market_tok.codec(name), market_frame[name].to_numpy()
        ok = ~np.isnan(x)
        t_err = codec.transform.forward(back[name].to_numpy()[ok]) - codec.transform.forward(x[ok])
        assert abs(t_err.mean()) < 0.05 * codec.width, name


@pytest.fixture(scope="module")
def transactions(shared_data) -> pd.DataFrame:
    from data_sources.tabformer import read_tabformer

    return read_tabformer(shared_data / "tabformer" / "User0_credit_card_transactions.csv", progress=False, engine="cpu")


def test_tabformer_round_trips(transactions):
    tok = TableTokenizer.fit(transactions, tabformer_specs(transactions))
    ids, clamped = tok.encode_with_report(transactions)
    assert sum(clamped.values()) == 0
    back = tok.decode(ids)
    assert list(back.columns) == list(transactions.columns)
    for name in transactions.columns:
        a, b = transactions[name].reset_index(drop=True), back[name]
        assert a.isna().equals(b.isna()), name
        ok = a.notna()
        if name == "amount":
            np.testing.assert_array_equal(b[ok].to_numpy(), a[ok].to_numpy())  # cents are exact
        else:
            assert (a[ok].astype(object).to_numpy() == b[ok].astype(object).to_numpy()).all(), name
    assert str(back["timestamp"].dtype) == "datetime64[ns]" and isinstance(back["use_chip"].dtype, pd.CategoricalDtype)
    assert tok.report(transactions)["mismatches"].sum() == 0


def test_tabformer_raw_csv_with_plain_pandas(shared_data):
    """The published CSV read with plain pandas (strings like "$134.09"), default dtype codecs."""
    raw = pd.read_csv(shared_data / "tabformer" / "User0_credit_card_transactions.csv")
    raw["Amount"] = raw["Amount"].str.replace("$", "", regex=False).astype(float)
    tok = TableTokenizer.fit(raw)
    rep = tok.report(raw)
    assert (rep["mismatches"] == 0).all() and (rep["clamped"] == 0).all()
    assert rep.loc["Amount", "max_error"] <= rep.loc["Amount", "bound"]


def test_report_command(shared_mapping, capsys, tmp_path):
    from forecaster.cli import main

    out = tmp_path / "tok.json"
    assert main(["tokenizer", "report", "--data", str(shared_mapping), "--as-of", "2015-06-30", "--save", str(out)]) == 0
    text = capsys.readouterr().out
    for name in ("SPX", "VIX", "UST10Y", "CPI_YOY", "FED_BS"):
        assert name in text
    assert "tokens/row" in text and TableTokenizer.load(out).columns[0] == "SPX"
    assert main(["tokenizer", "report", "--data", str(tmp_path / "missing.yaml")]) == 2
