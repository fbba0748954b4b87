"""Pure figure builders: data in, ``plotly.graph_objects.Figure`` out. No I/O, no Dash.

One module per page (``forecast``, ``scenarios``, ``regimes``, ``backtest``,
``synthesis``, ``data``); what they share (colours, the house layout, the empty
figure, fan bands, the fan chart) is ``forecaster.market.plots``, which ``Forecast.plot`` uses too. Every builder is also importable from here
(``figures.fan_chart``).
"""
from dashboard.figures.backtest import coverage_chart, pit_histogram, realized_fan, skill_chart
from forecaster.market.plots import (
    FAN_QUANTILES, add_fan, empty_figure, fan_quantiles, regime_colors, rgba, series_color, series_label,
)
from dashboard.figures.data import coverage_heatmap, series_chart
from dashboard.figures.forecast import fan_chart, learning_curve, summary_rows
from dashboard.figures.regimes import regime_bars, regime_history, regime_stack
from dashboard.figures.scenarios import compare_chart
from dashboard.figures.synthesis import column_scores, distribution_compare

__all__ = [
    "FAN_QUANTILES", "add_fan", "empty_figure", "fan_quantiles", "regime_colors", "rgba", "series_color", "series_label",
    "fan_chart", "summary_rows", "learning_curve", "compare_chart", "regime_stack", "regime_history", "regime_bars",
    "coverage_chart", "pit_histogram", "skill_chart", "realized_fan", "distribution_compare", "column_scores",
    "series_chart", "coverage_heatmap",
]
