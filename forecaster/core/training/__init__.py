"""Training: presets and configs, row-aligned windows with a time split, the shared
training loop (plain torch or DeepSpeed; process-group setup in ``distributed``),
weight files with checksums (``checkpoint``), safe loading of torch-pickled state
(``safe_load``), and the metrics history. The run folder itself (layout, lock,
checkpoint records, loading a trained model) is ``forecaster.core.run``.

Nothing here imports deepspeed at import time; the DeepSpeed backend imports it
when it is built.
"""
