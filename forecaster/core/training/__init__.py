"""Training: presets and configs, row-aligned windows with a time split, the shared
training loop (plain torch or DeepSpeed), run directories with atomic checkpoints,
and the metrics history.

Nothing here imports deepspeed at import time; the DeepSpeed backend imports it
when it is built.
"""
