#!/usr/bin/env bash
# Every GPU figure of docs/PERFORMANCE.md in one short session (under 8 minutes on one GPU).
#
#   bash benchmarks/gpu_suite.sh            # figures in $OUT (the device tool's) or ./gpu-suite/
#
# Steps, each bounded by `timeout` (the sum of the bounds is 7.5 minutes):
#   0. a usable GPU (forecaster.core.device: a real test operation); without one the suite stops, exit 1
#   1. the marked GPU tests (tests/test_gpu.py)                                            <= 120 s
#   2. DeepSpeed bf16 training of the `base` preset: tokens/s and model FLOPs utilisation   <= 120 s
#   3. sampling 1000 paths x 250 days of the full panel with `base` (target < 10 s), bf16
#      and fp32, and the same with `day-small` (the README's forecasting model)            <= 150 s
#   4. cuDF ETL rows/s (bench_tabformer_etl.py --gpu, 2 million rows; needs the gpu extra)   <= 60 s
#   TODO(synthesis): synthetic transactions per second on the GPU. forecaster/synthesis is
#   being rewritten (issue 18 leaves `synth generate --device/--scheduler` to that work);
#   add its timing here as step 5 when `forecaster synth generate --device cuda` exists.
#
# A step that fails is reported and the others still run; the suite then exits 1 and
# lists the failed steps. Figures: $DIR/figures.json (one object per step), the log in
# $DIR/suite.log. The shared data (../shared/data next to the repository, or
# FORECASTER_SHARED_DATA) is needed by steps 1-3; without it they fail with that message.
# Peak bf16 FLOP/s for MFU come from the GPU's name (H100/H200 SXM 989 TFLOP/s, A100 312,
# L40S 362, L4 121, A10 125); set GPU_PEAK_TFLOPS for another GPU.
#
# GPU_SUITE_CHECK_ON_CPU=1 runs the same steps on the CPU with tiny sizes (the tiny and
# day-tiny presets, 20 paths x 10 days, 3 training steps): a check of the script itself,
# not a measurement; its figures say "cpu" and step 0 does not stop it.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${OUT:-$REPO/gpu-suite}"
mkdir -p "$DIR"
LOG="$DIR/suite.log"
FIG="$DIR/figures.jsonl"
: > "$LOG"; : > "$FIG"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
if [ "${GPU_SUITE_CHECK_ON_CPU:-0}" = 1 ]; then
  export SUITE_DEVICE=cpu SUITE_TRAIN_PRESET=tiny SUITE_TRAIN_STEPS=3 SUITE_SAMPLE_PRESETS="tiny day-tiny" \
         SUITE_PATHS=20 SUITE_DAYS=10 SUITE_PRECISION=fp32
else
  export SUITE_DEVICE=cuda SUITE_TRAIN_PRESET=base SUITE_TRAIN_STEPS=30 SUITE_SAMPLE_PRESETS="base day-small" \
         SUITE_PATHS=1000 SUITE_DAYS=250 SUITE_PRECISION=bf16
fi
cd "$REPO"
START=$(date +%s)
FAILED=()

say() { echo "$*" | tee -a "$LOG"; }

step() {  # step NAME SECONDS COMMAND...: run it bounded, log it, remember a failure
  local name="$1" limit="$2"; shift 2
  say "== $name (at most ${limit} s)"
  local t0=$(date +%s)
  timeout --signal=TERM --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  say "== $name: exit $rc after $(( $(date +%s) - t0 )) s"
  if [ "$rc" -ne 0 ]; then FAILED+=("$name (exit $rc$([ "$rc" -eq 124 ] && echo ', timed out'))"); fi
}

# -- 0. a usable GPU, or stop -------------------------------------------------------------
if ! python - <<'EOF' 2>&1 | tee -a "$LOG"; then
import sys
from forecaster.core.device import DeviceError, resolve_device
import os
try:
    dev = resolve_device(os.environ["SUITE_DEVICE"])
except DeviceError as exc:
    sys.exit(f"gpu_suite: no usable GPU: {exc}")
import torch
print(f"gpu_suite: {dev.describe()}; torch {torch.__version__}, CUDA {torch.version.cuda}")
EOF
  say "gpu_suite: FAILED: the GPU figures need a usable CUDA GPU (nothing measured)"
  exit 1
fi

# the shared data, as the tests find it; a mapping file pointing at it when it is not ../shared/data
DATA_DIR="${FORECASTER_SHARED_DATA:-$REPO/../shared/data}"
MAPPING="$REPO/tests/fixtures/shared_data.yaml"
if [ -d "$DATA_DIR" ] && [ "$(cd "$DATA_DIR" && pwd)" != "$(cd "$REPO/../shared/data" 2>/dev/null && pwd)" ]; then
  MAPPING="$DIR/shared_data.yaml"
  python -c "import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); d['folder'] = sys.argv[2]; yaml.safe_dump(d, open(sys.argv[3], 'w'))" \
    "$REPO/tests/fixtures/shared_data.yaml" "$(cd "$DATA_DIR" && pwd)" "$MAPPING"
fi
export FORECASTER_SHARED_DATA="$DATA_DIR" GPU_SUITE_MAPPING="$MAPPING" GPU_SUITE_FIG="$FIG" GPU_SUITE_DIR="$DIR"
need_data() {
  if [ ! -f "$DATA_DIR/README.md" ]; then
    echo "the shared data is not at $DATA_DIR: put ../shared/data next to the repository or set FORECASTER_SHARED_DATA"
    return 1
  fi
}

# -- 1. the marked GPU tests ----------------------------------------------------------------
gpu_tests() {
  need_data || return 1
  python -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py -rs
}
step "gpu tests" 120 bash -c "$(declare -f need_data gpu_tests); DATA_DIR='$DATA_DIR' gpu_tests"

# -- 2. DeepSpeed bf16 training of `base`: tokens/s and MFU -----------------------------------
train_base() {
  need_data || return 1
  local res="$DIR/train_base.json"
  RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29517 \
    python benchmarks/bench_train.py --worker --engine deepspeed --preset "$SUITE_TRAIN_PRESET" \
      --precision "$SUITE_PRECISION" --zero-stage 2 --steps "$SUITE_TRAIN_STEPS" --warmup 5 \
      --data "$GPU_SUITE_MAPPING" --result "$res" || return 1
  python - "$res" <<'EOF'
import json, os, sys
sys.path.insert(0, "benchmarks")
import torch
from bench_train import _datasets
from forecaster.core.model import GPT
from forecaster.core.training.config import TrainConfig, model_config_for

r = json.load(open(sys.argv[1]))
preset = os.environ["SUITE_TRAIN_PRESET"]
cfg = TrainConfig.from_preset(preset)
train_ds, _, vocab = _datasets(os.environ["GPU_SUITE_MAPPING"], cfg.context_rows, 0)
m = model_config_for(preset, vocab, train_ds.row_len, cfg.context_rows)
model = GPT(m)
n = model.num_params() - sum(p.numel() for name, p in model.named_parameters() if "wpe" in name)
T = m.block_size
flops_per_token = 6 * n + 12 * m.n_layer * m.n_embd * T  # nanoGPT / PaLM: forward + backward
name = torch.cuda.get_device_name() if os.environ["SUITE_DEVICE"] == "cuda" else "cpu"
peaks = {"H200": 989, "H100": 989, "A100": 312, "L40S": 362, "L4": 121, "A10": 125}
peak = float(os.environ.get("GPU_PEAK_TFLOPS") or next((v for k, v in peaks.items() if k in name), 0)) * 1e12
mfu = r["tokens_per_s"] * flops_per_token / peak if peak else None
out = {"step": f"train_{preset}_deepspeed_{os.environ['SUITE_PRECISION']}", "gpu": name, "tokens_per_s": round(r["tokens_per_s"]),
       "s_per_step": round(r["s_per_step"], 4), "batch_size": r["batch_size"], "params": n,
       "flops_per_token": flops_per_token, "peak_tflops": peak / 1e12 or None,
       "mfu": None if mfu is None else round(mfu, 4)}
print(f"train {preset} (DeepSpeed ZeRO-2, {os.environ['SUITE_PRECISION']}, {name}): {out['tokens_per_s']:,} tokens/s, "
      f"{out['s_per_step'] * 1000:.1f} ms/step, {n / 1e6:.1f} M params; "
      f"MFU {'unknown (set GPU_PEAK_TFLOPS)' if mfu is None else f'{mfu:.1%}'} of {peak / 1e12:.0f} TFLOP/s")
open(os.environ["GPU_SUITE_FIG"], "a").write(json.dumps(out) + "\n")
EOF
}
step "train base (DeepSpeed bf16)" 120 bash -c "$(declare -f need_data train_base); DATA_DIR='$DATA_DIR' DIR='$DIR' train_base"

# -- 3. sampling 1000 x 250 of the full panel --------------------------------------------------
sample_paths() {
  need_data || return 1
  python - <<'EOF'
import json, os, time
import numpy as np
import torch
from data_sources.panel import PanelBuilder
from forecaster.core.daymodel import DayGPT
from forecaster.core.device import Device, resolve_device
from forecaster.core.model import GPT
from forecaster.core.tokenizer import TableTokenizer
from forecaster.core.training.config import PRESETS, model_config_for, model_kind
from forecaster.market.features import model_frame
from forecaster.market.inputs import InputNormalization, feature_names, features_for_history, yoy_index_levels
from forecaster.market.pipeline import ForecastPipeline
from forecaster.market.tokenizer import market_specs


def random_pipeline(preset, builder, device):
    """A pipeline of ``preset``'s shape with random weights over the full panel (as bench_sampler.py builds it)."""
    panel = builder.build()
    frame = model_frame(panel)
    tok = TableTokenizer.fit(frame, market_specs(frame))
    torch.manual_seed(0)
    rows = PRESETS[preset]["context_rows"]
    if model_kind(preset) == "flat":
        return ForecastPipeline(GPT(model_config_for(preset, tok.vocab_size, tok.tokens_per_row, rows)), tok,
                                device=device)
    names = feature_names(list(tok.columns))
    norm = InputNormalization.fit(features_for_history(panel[list(tok.columns)], yoy_index_levels(builder)),
                                  panel.index, names, panel.index[-1])
    cfg = model_config_for(preset, tok.vocab_size, tok.tokens_per_row, rows, n_features=len(names))
    return ForecastPipeline(DayGPT(cfg), tok, inputs=(names, norm), device=device)


builder = PanelBuilder(os.environ["GPU_SUITE_MAPPING"])
auto = resolve_device(os.environ["SUITE_DEVICE"])
n_paths, days = int(os.environ["SUITE_PATHS"]), int(os.environ["SUITE_DAYS"])
sync = torch.cuda.synchronize if auto.type == "cuda" else (lambda: None)
for preset in os.environ["SUITE_SAMPLE_PRESETS"].split():
    devices = {(d.torch, d.bf16): d for d in (auto, Device(auto.torch, False, "fp32"))}  # bf16 if supported, fp32
    for dev in devices.values():
        pipe = random_pipeline(preset, builder, dev)  # the speed does not depend on the weights
        pipe.predict(builder, "2019-12-31", n_paths=n_paths, horizon=5, seed=0)  # warm-up: kernels, cuBLAS
        sync()
        t0 = time.perf_counter()
        fc = pipe.predict(builder, "2019-12-31", n_paths=n_paths, horizon=days, seed=0)
        sync()
        wall = time.perf_counter() - t0
        precision = "bf16" if dev.bf16 else "fp32"
        target = " (target < 10 s)" if preset == "base" else ""
        out = {"step": f"sample_{preset}_{precision}", "device": str(dev), "paths": n_paths, "days": days,
               "series": len(fc.series), "seconds": round(wall, 2), "finite": float(np.isfinite(fc.paths).mean()),
               "params": pipe.model.num_params()}
        print(f"sample {preset} ({pipe.model.num_params() / 1e6:.1f} M params, {dev}, {precision}): {n_paths} paths "
              f"x {days} days x {len(fc.series)} series in {wall:.1f} s{target}", flush=True)
        open(os.environ["GPU_SUITE_FIG"], "a").write(json.dumps(out) + "\n")
EOF
}
step "sample 1000 x 250" 150 bash -c "$(declare -f need_data sample_paths); DATA_DIR='$DATA_DIR' sample_paths"

# -- 4. cuDF ETL rows/s --------------------------------------------------------------------
etl_cudf() {
  python -c "import cudf" 2>/dev/null || { echo "cuDF is not installed: pip install 'forecaster[gpu]' (cudf-cu12)"; return 1; }
  [ -f "$DATA_DIR/tabformer/User0_credit_card_transactions.csv" ] || { echo "no TabFormer sample under $DATA_DIR"; return 1; }
  python benchmarks/bench_tabformer_etl.py --rows 2000000 --phases read --gpu | tee "$DIR/etl.txt" || return 1
  python - "$DIR/etl.txt" <<'EOF'
import json, os, re, sys
for line in open(sys.argv[1]):
    m = re.match(r"(read|cudf)\s*: ([\d,]+) rows in ([\d.]+) s wall = ([\d,]+) rows/s", line)
    if m:
        out = {"step": f"etl_{m.group(1)}", "rows": int(m.group(2).replace(",", "")), "seconds": float(m.group(3)),
               "rows_per_s": int(m.group(4).replace(",", "")), "equal_to_cpu": "equal to the CPU read: True" in line}
        open(os.environ["GPU_SUITE_FIG"], "a").write(json.dumps(out) + "\n")
EOF
}
step "cuDF ETL" 60 bash -c "$(declare -f etl_cudf); DATA_DIR='$DATA_DIR' DIR='$DIR' etl_cudf"

# TODO(synthesis): step 5, synthetic transactions per second (see the header).

say "gpu_suite: $(( $(date +%s) - START )) s in all; figures in $FIG"
if [ ${#FAILED[@]} -ne 0 ]; then
  say "gpu_suite: FAILED steps: ${FAILED[*]}"
  exit 1
fi
say "gpu_suite: every step passed"
