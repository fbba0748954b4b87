"""The market domain: the point-in-time panel as features, forecasts, scenarios, regimes, exports, backtests.

``pipeline.ForecastPipeline`` joins a trained run (``forecaster.core``) to the
data layer (``data_sources``): it builds the panel as of the origin, encodes the
history with the market tokenizer specs (``tokenizer``), samples joint paths and
decodes them into a ``forecast.Forecast`` of levels.
"""
