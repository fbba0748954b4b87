"""``benchmarks/bench_onestep.py``: each day's prediction reads only the days before it (and the
earlier slots of its own day), its real value is that day's, and the table summarises them exactly."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import load_benchmark

SERIES = ["SPX", "VIX", "UST10Y"]


@pytest.fixture(scope="module")
def bo():
    yield from load_benchmark("bench_onestep")


@pytest.fixture(scope="module")
def setup(shared_mapping):
    from data_sources.panel import PanelBuilder
    from forecaster.core.daymodel import DayGPT, DayGPTConfig
    from forecaster.core.tokenizer import TableTokenizer
    from forecaster.market.features import model_frame
    from forecaster.market.inputs import InputNormalization, feature_names, features_for_history, yoy_index_levels
    from forecaster.market.pipeline import ForecastPipeline
    from forecaster.market.tokenizer import market_specs

    builder = PanelBuilder(str(shared_mapping), series=SERIES, start="2015-01-01")
    panel = builder.build(pd.Timestamp("2016-12-30"))
    frame = model_frame(panel).iloc[1:]
    tok = TableTokenizer.fit(frame, market_specs(frame))
    names = feature_names(SERIES)
    norm = InputNormalization.fit(features_for_history(panel, yoy_index_levels(builder)), panel.index, names, "2015-12-31")
    torch.manual_seed(0)
    model = DayGPT(DayGPTConfig(vocab_size=tok.vocab_size, row_len=tok.tokens_per_row, n_features=len(names),
                                context_rows=16, n_layer=1, n_head=2, n_embd=32, local_n_layer=1, local_n_head=2,
                                local_n_embd=16))
    info = {"series": SERIES, "val_start": "2016-06-01", "last_date": "2016-09-30"}
    return ForecastPipeline(model, tok, None, info=info, inputs=(names, norm)), builder


def test_a_days_prediction_reads_only_the_days_before_it_and_its_real_value_is_that_days(bo, setup):
    from forecaster.market.features import model_frame

    pipe, builder = setup
    tails = {"SPX": -2.0, "VIX": 10.0}
    short = bo.one_step(pipe, builder, pd.Timestamp("2016-09-30"), ["SPX", "VIX"], tails, stride=3)
    long = bo.one_step(pipe, builder, pd.Timestamp("2016-12-30"), ["SPX", "VIX"], tails, stride=3)
    common = short.index
    assert len(common) > 50 and common.isin(long.index).all()
    # later days change nothing before them (float tolerance: other batch compositions)
    pd.testing.assert_frame_equal(short, long.loc[common], check_exact=False, rtol=1e-5, atol=1e-6)
    frame = model_frame(builder.build(pd.Timestamp("2016-12-30")))
    np.testing.assert_array_equal(long["SPX.real"].to_numpy(), frame.loc[long.index, "SPX"].to_numpy())
    vix = builder.build(pd.Timestamp("2016-12-30"))["VIX"]
    np.testing.assert_array_equal(long["VIX.before"].to_numpy(), vix.shift(1).loc[long.index].to_numpy())
    # a distribution: the mean inside the values' range, probabilities in [0, 1], a positive std
    _, _, values = bo.slot_values(pipe.tokenizer, "SPX")
    assert long["SPX.mean"].between(values.min(), values.max()).all()
    assert long["SPX.tail"].between(0, 1).all() and (long["SPX.std"] > 0).all()


def test_the_summary_table_is_the_means_of_its_rows(bo):
    idx = pd.bdate_range("2016-01-04", periods=6)
    df = pd.DataFrame({"SPX.mean": [0.1, 0.3, 0.0, 0.0, 0.2, 0.4], "SPX.std": [1.0, 1.0, 2.0, 2.0, 3.0, 4.0],
                       "SPX.tail": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], "SPX.real": [1.0, -3.0, 0.0, 2.0, -1.0, 1.0],
                       "VIX.before": [12.0, 12.0, 20.0, 30.0, 12.0, 30.0]}, index=idx)
    info = {"val_start": "2016-01-08", "last_date": "2016-01-11"}  # 4 training days, 2 validation days, none after
    lines = bo.summary(df, info, ["SPX"], {"SPX": -2.0})
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): [c.strip() for c in line.split("|")[3:-1]] for line in lines[2:]}
    assert rows[("training days", "all")] == ["4", "+0.100 / +0.000", f"{np.sqrt(2.5):.2f} / {np.std([1, -3, 0, 2], ddof=1):.2f}",
                                              "0.1500 / 0.2500"]
    assert rows[("training days", "VIX<13 before")][:2] == ["2", "+0.200 / -1.000"]
    assert rows[("training days", "VIX>25 before")][0] == "1"
    assert rows[("validation days", "all")][1] == "+0.300 / +0.000"
    assert not any(k[0] == "after the data" for k in rows)
