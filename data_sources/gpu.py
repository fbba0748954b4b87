"""Is cuDF usable here? One cached probe that the whole project reuses.

cuDF is the optional ``gpu`` extra. ``import cudf`` can succeed on a machine
without a GPU (or with a driver that is too old, or no free GPU memory) and the
first real operation then fails, so the probe runs a tiny operation end to end
(host -> device -> kernel -> host) inside ``try``. Nothing runs at import time;
the answer is computed on the first call and cached for the process.
"""
from __future__ import annotations

import functools
import logging
import os

log = logging.getLogger(__name__)

#: Set to ``0`` to force the CPU paths even where cuDF works (benchmarks, debugging).
ENV_DISABLE = "FORECASTER_USE_CUDF"


@functools.cache
def cudf_usable() -> bool:
    """True when ``cudf`` imports and a tiny device round trip gives the right answer.

    Cached: the probe (a few hundred ms on a GPU machine, the CUDA context
    creation) runs once per process. Returns False, never raises, when cuDF is
    not installed, no GPU is visible, or the operation fails for any reason;
    the reason is logged at INFO level. ``FORECASTER_USE_CUDF=0`` forces False.
    Tests that need a fresh answer call ``cudf_usable.cache_clear()``.
    """
    if os.environ.get(ENV_DISABLE, "").strip() == "0":
        log.info("cuDF disabled by %s=0", ENV_DISABLE)
        return False
    try:
        import cudf  # noqa: PLC0415 - optional extra, imported only when probed

        probe = cudf.Series([1, 2, 3], dtype="int32")
        total = int((probe * 2).sum())  # runs a kernel and copies the result back
        text = int(cudf.Series(["a,b", "c"]).str.len().sum())  # the string kernels readers use
    except Exception as exc:  # any failure (ImportError, CUDA errors, ...) means "no"
        log.info("cuDF not usable: %s: %s", type(exc).__name__, exc)
        return False
    if total != 12 or text != 4:
        log.info("cuDF probe gave a wrong answer (%r, %r); not using it", total, text)
        return False
    return True
