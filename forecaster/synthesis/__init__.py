"""Credit-card synthesis mode: the shared tokenizer and GPT generate synthetic transaction tables.

Modules, bottom up:

- ``documents``: typed TabFormer table <-> per-card token segments; the per-card
  time split; reading/writing ``.csv`` (published format) and ``.parquet`` (typed).
- ``train``: fit the tokenizer, cut per-card windows, run the training engine.
- ``generate``: ``Synthesizer(run_dir).generate(rows, conditions=..., context=...)``.
- ``evaluate``: privacy, fidelity, trajectory and utility metrics.
- ``report``: the evaluation folder (JSON, CSV, HTML with plots, typed samples).

See docs/SYNTHESIS.md for the method and the reference evaluation.
"""
