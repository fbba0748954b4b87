"""Rolling-origin backtest of the GPT against simple baselines.

- ``windows``: named evaluation windows and the origin schedule.
- ``baselines``: random walk with block-bootstrapped shocks, GARCH-t with filtered
  historical simulation, a monthly VAR on the macro block, regime climatology; each
  returns a ``Forecast`` in the same path format as the GPT.
- ``metrics``: proper scores of one path ensemble against what happened (CRPS,
  energy score, interval coverage, PIT, Brier and ranked probability scores),
  computed with ``scoringrules``.
- ``summary``: averages over origins and skill scores with block-bootstrap
  confidence intervals (``arch.bootstrap``).
- ``runner``: the origin loop (point-in-time panels, retraining policy, resumable
  per-origin Parquet files).
- ``report``: the self-contained HTML report.
"""
