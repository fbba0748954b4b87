"""Credit-card synthesis mode: the shared tokenizer and GPT generate synthetic transaction tables.

Modules, bottom up:

- ``tokenizer``: the TabFormer column specs for the shared tokenizer.
- ``documents``: typed TabFormer table <-> per-card token segments; the per-card
  time split; reading/writing ``.csv`` (published format) and ``.parquet`` (typed).
- ``train``: fit the tokenizer, cut per-card windows, run the training engine.
- ``generate``: ``Synthesizer(run_dir).generate(rows, conditions=..., context=...)``.
- ``features``: the view of a table every metric compares;
  ``fidelity`` (columns, pairs, consistency), ``privacy`` (copies, distance to
  closest record, copied trajectories), ``utility`` (the fraud classifier);
  ``evaluate`` combines them.
- ``report``: the evaluation folder (JSON, CSV, HTML with plots, typed samples).

See docs/SYNTHESIS.md for the method and the reference evaluation.
"""
