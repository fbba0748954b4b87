"""``synth export-model``: the folder to share, with only what generation needs.

A training run folder is confidential: it holds optimizer checkpoints, the
metrics history, ``run.json`` with the training file's path, and ``synthesis.json``
with per-card, per-month and per-(card, month) transaction counts (for a one-user sample,
that person's card use), besides the weights and the tokenizer's category lists.
The export holds:

==================  =========================================================================
file                content
==================  =========================================================================
best.safetensors    the weights (no optimizer state)
model_config.json   the model's shape
tokenizer.json      the fitted tokenizer (its category lists are the merchants, cities, zips,
                    MCCs seen in training: needed to write them, and derived from the data)
run.json            the model kind and the tokenizer fingerprint only
synthesis.json      columns, input features, per-column modes, and the start statistics as
                    shares: card indexes rounded to 0.05, months over all cards and (card, month)
                    pairs rounded to 0.001 of all rows (pairs below 0.0005 left out), and
                    the most common use_chip of each pair kept
marginals.json      if the run was calibrated (``synth calibrate``) and not ``--no-marginals``: the
                    log-biases of each card's merchants and yearly chip use and of the gap by
                    the previous hour, rounded to 0.05 (aggregates: shares relative to the
                    model's), without the calibration's settings and history
manifest.json       sha256 of every file above
==================  =========================================================================

``Synthesizer(export_dir)`` and ``synth generate --run EXPORT_DIR`` sample from it.
The folder is published whole (``foundation.atomic.publish_dir``, kind ``synth-model``).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from foundation.atomic import publish_dir, write_text
from forecaster.core.run import RunDir
from forecaster.core.training.checkpoint import sha256_file
from forecaster.synthesis.documents import SynthesisInputError
from forecaster.synthesis.marginals import EXPORT_STEP, MARGINALS_FILE, Marginals
from forecaster.synthesis.train import SYNTHESIS_FILE

EXPORT_KIND = "synth-model"
#: synthesis.json keys an export keeps (everything else of the run's file is left behind)
_KEEP = ("format", "version", "columns", "row_columns", "features")


def _shares(counts: dict, step: float) -> dict:
    """{key: count} -> {key: share rounded to ``step``}, keys whose share rounds to 0 left out."""
    total = float(sum(counts.values()))
    out = {k: round(round(v / total / step) * step, 6) for k, v in counts.items()}
    return {k: v for k, v in out.items() if v > 0} or {max(counts, key=counts.get): 1.0}


def export_model(run_dir: str | Path, out: str | Path, which: str = "best", marginals: bool = True) -> dict:
    """Write the shareable model folder ``out`` from the synthesis run ``run_dir``; returns the manifest.

    ``marginals=False`` leaves the run's marginal calibration out (``--no-marginals``): the
    export then samples the model's own distribution.
    """
    run = RunDir(run_dir)
    if not (run.path / SYNTHESIS_FILE).exists() or not run.tokenizer.exists():
        raise SynthesisInputError(f"{run.path} is not a synthesis run (no {SYNTHESIS_FILE}); "
                                  "train one with `forecaster synth train`")
    if which not in ("best", "last"):
        raise SynthesisInputError(f"--weights must be best or last, got {which!r}")
    tok = run.load_tokenizer()
    if which == "best" and run.best_weights.exists():
        weights = run.best_weights
    else:
        state = run.load_state()
        if state is None:
            raise SynthesisInputError(f"{run.path} has no weights yet; train first")
        weights = state[0] / "model.safetensors"
    calibration = Marginals.load(run.path, tok) if marginals else None
    if calibration is not None:
        from forecaster.synthesis.generate import Synthesizer

        if Synthesizer(run.path, which=which).weights_digest() != calibration.weights:
            raise SynthesisInputError(f"{run.path / MARGINALS_FILE} was fitted for other weights than --weights "
                                      f"{which}; rerun `forecaster synth calibrate --weights {which}` first")
    meta = json.loads((run.path / SYNTHESIS_FILE).read_text())
    seed = meta["seed"]
    public = {k: meta[k] for k in _KEEP if k in meta}
    public["seed"] = {"cards": _shares(seed["cards"], 0.05), "months": _shares(seed["months"], 0.001),
                      "modes": seed["modes"]}
    if seed.get("card_months"):  # an older run has none: its export draws card and month independently
        joint = _shares({(c, m): v for c, m, v in seed["card_months"]}, 0.001)
        public["seed"]["card_months"] = [[c, m, v] for (c, m), v in joint.items()]
        public["seed"]["card_month_use_chip"] = [[c, m, v] for c, m, v in seed.get("card_month_use_chip", [])
                                                 if (c, m) in joint]
    public["exported"] = {"weights": which}
    with publish_dir(out, EXPORT_KIND) as staging:
        shutil.copyfile(weights, staging / "best.safetensors")
        shutil.copyfile(run.model_config, staging / "model_config.json")
        shutil.copyfile(run.tokenizer, staging / "tokenizer.json")
        write_text(staging / "run.json", json.dumps({"model": run.model_kind(),
                                                     "tokenizer_fingerprint": tok.fingerprint()}, indent=2))
        write_text(staging / SYNTHESIS_FILE, json.dumps(public, indent=2, sort_keys=True))
        if calibration is not None:
            Marginals(calibration.fingerprint, calibration.weights, calibration.bias, calibration.years).save(
                staging, step=EXPORT_STEP)
        files = {p.name: sha256_file(p) for p in sorted(staging.iterdir())}
        manifest = {"kind": EXPORT_KIND, "files": files}
        write_text(staging / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    return manifest
