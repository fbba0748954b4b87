"""Training configuration and model-size presets.

``TrainConfig`` is saved as ``train_config.json`` in the run directory and rebuilt
from it on resume; an unknown key is an error. Presets pick the model shape and
sensible defaults for the context (in rows), batch and step count:

========  ======  =====  =====  ============  =====  ==========================================
preset    layers  heads  width  context rows  batch  meant for
========  ======  =====  =====  ============  =====  ==========================================
tiny      2       2      48     4             8      tests (seconds on a CPU)
small     4       4      128    8             16     CPU demo (300 steps, ~5-10 min on 2 cores)
base      8       8      512    32            64     one GPU
large     16      16     1024   32            128    several GPUs / nodes
day-tiny  2+1     2+2    32+32  32            8      tests of the day-level model (seconds)
day-small 4+2     4+2    128+64 256           16     the README's forecasting model on a CPU (30 min budget on 2 cores)
========  ======  =====  =====  ============  =====  ==========================================

A preset says its model kind (``"model"``): ``flat`` is the token-level
:class:`~forecaster.core.model.GPT`, ``day`` the day-level
:class:`~forecaster.core.daymodel.DayGPT` (global layers over rows + local layers
within the row; the table gives global+local). For a ``day`` preset the context
is in rows too, and ``model_config_for`` returns a ``DayGPTConfig`` whose
``context_rows`` is the preset's: a training window is ``context_rows + 1`` rows
(the last one only a target).

The market tokenizer writes one token per series and day plus the row
delimiter, 22 tokens per day for the 21 reference series, so 8 days are 176
tokens and 32 days 704. The model's ``block_size`` is ``context_rows *
tokens_per_row``, so a window always starts on a row boundary: ``base``/``large``
see six weeks of history per window, ``small`` a week and a half, ``tiny`` four
days.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from foundation.errors import UserError
from foundation.dataclass_io import dataclass_from_dict
from forecaster.core.daymodel import DayGPTConfig
from forecaster.core.model import GPTConfig

# Model shape and training defaults per preset.
PRESETS: dict[str, dict] = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=48, dropout=0.0,
                 context_rows=4, batch_size=8, max_steps=200, lr=3e-3, warmup_steps=10, eval_every=50),
    "small": dict(n_layer=4, n_head=4, n_kv_head=1, n_embd=128, dropout=0.1,
                  context_rows=8, batch_size=16, max_steps=300, lr=2e-3, warmup_steps=20, eval_every=50, patience=3),
    "base": dict(n_layer=8, n_head=8, n_kv_head=2, n_embd=512, dropout=0.1,
                 context_rows=32, batch_size=64, max_steps=20000, lr=6e-4, warmup_steps=500, eval_every=250, patience=5),
    "large": dict(n_layer=16, n_head=16, n_kv_head=4, n_embd=1024, dropout=0.1,
                  context_rows=32, batch_size=128, max_steps=50000, lr=3e-4, warmup_steps=1000, eval_every=500, patience=5),
    # day-level model. day-small measured on the shared 21-series panel (22 tokens/row, 254 features):
    # ~1.5 s per step of 16 windows x 257 rows on 2 CPU cores (OMP_NUM_THREADS=2, ~60k target tokens/s),
    # so 1,000 steps (warm-up and cosine included) end in ~25 min; max_minutes=30 is the guard
    "day-tiny": dict(model="day", n_layer=2, n_head=2, n_embd=32, local_n_layer=1, local_n_head=2, local_n_embd=32,
                     dropout=0.0, context_rows=32, batch_size=8, max_steps=200, lr=3e-3, warmup_steps=10,
                     eval_every=50),
    # Without input dropout it memorises the 1990-2017 panel in ~150 steps (training loss 1.17, validation
    # 1.63) and its paths fall apart; input_dropout=0.25 keeps it learning what generalises (docs/PERFORMANCE.md).
    # state_dropout=0.3 makes the local decoder learn each day's cross-series draw from the day's own earlier
    # slots too; with the short yields as shifted log changes it lifted mean |corr| from a 2017 origin from
    # 0.67x to 0.79x history and brought the SPX drift within 4 points of history (0.5 was worse).
    # It is evaluated often and stopped early.
    "day-small": dict(model="day", n_layer=4, n_head=4, n_kv_head=1, n_embd=128, local_n_layer=2, local_n_head=2,
                      local_n_embd=64, dropout=0.2, input_dropout=0.25, state_dropout=0.3, context_rows=256,
                      batch_size=16, max_steps=1000, lr=2e-3,
                      warmup_steps=50, eval_every=25, eval_windows=32, patience=4, max_minutes=30.0),
}
_MODEL_KEYS = ("model", "n_layer", "n_head", "n_kv_head", "n_embd", "dropout",
               "local_n_layer", "local_n_head", "local_n_embd", "input_dropout", "local_state", "state_dropout")
MODEL_KINDS = ("flat", "day")


class ConfigError(UserError):
    """A training option or a saved config is invalid."""


@dataclass
class TrainConfig:
    """Everything that decides a training run besides the data and the tokenizer."""

    preset: str = "tiny"
    engine: str = "torch"            # "torch" (one process) or "deepspeed"
    context_rows: int = 4            # rows per training window
    batch_size: int = 8              # sequences per optimizer step, all ranks together
    grad_accum: int = 1              # micro-batches per optimizer step on each rank
    max_steps: int = 200
    lr: float = 3e-3                 # peak learning rate
    min_lr_ratio: float = 0.1        # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 10           # linear warm-up from 0
    weight_decay: float = 0.1        # on matrices only, not on norms/biases/embeddings of positions
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0           # global L2 norm; 0 = off
    eval_every: int = 50             # validation loss every N steps (and at the end)
    eval_windows: int = 64           # validation windows per evaluation (evenly spread, fixed)
    patience: int = 0                # stop after this many evaluations without improvement; 0 = off
    log_every: int = 10              # train-loss lines in the metrics history every N steps
    checkpoint_every: int = 100      # checkpoint every N steps (and at the end / on Ctrl-C)
    seed: int = 0
    zero_stage: int = 2              # DeepSpeed ZeRO stage 0-3
    precision: str = "auto"          # "auto" (bf16 on a GPU that supports it, else fp32), "fp32", "bf16"
    val_fraction: float = 0.1        # the most recent fraction of the rows is validation; 0: none (a refit)
    # the cosine schedule's length in steps (None: max_steps); a refit stops at its base run's best step
    # on the base run's schedule
    schedule_steps: int | None = None
    max_minutes: float | None = None  # wall-clock budget; stops cleanly with a checkpoint
    # the model shape's keys changed from the preset's, e.g. {"state_dropout": 0.5} (``--model-option``)
    model_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.engine not in ("torch", "deepspeed"):
            raise ConfigError(f"engine must be 'torch' or 'deepspeed', got {self.engine!r}")
        if self.zero_stage not in (0, 1, 2, 3):
            raise ConfigError(f"zero_stage must be 0, 1, 2 or 3, got {self.zero_stage}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.val_fraction == 0.0 and self.patience > 0:
            raise ConfigError(f"patience={self.patience} needs a validation window; with val_fraction 0 (no "
                              "validation) training runs exactly max_steps steps: set patience 0")
        if self.schedule_steps is not None and self.schedule_steps < 1:
            raise ConfigError(f"schedule_steps must be at least 1, got {self.schedule_steps}")
        for name in ("context_rows", "batch_size", "grad_accum", "max_steps", "eval_every",
                     "eval_windows", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not isinstance(self.model_options, dict):
            raise ConfigError(f"model_options must be a mapping of model keys to values, got {self.model_options!r}")
        for key, value in self.model_options.items():
            if key not in _MODEL_KEYS or key == "model":
                raise ConfigError(f"model option {key!r} is not a model shape key; choose from "
                                  f"{', '.join(k for k in _MODEL_KEYS if k != 'model')}")
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ConfigError(f"model option {key}={value!r} must be a number or a word")

    def lr_at(self, step: int) -> float:
        """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then cosine to min_lr."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, (self.schedule_steps or self.max_steps) - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        coeff = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
        return self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * coeff)

    def refit(self, steps: int, max_minutes: float | None = None) -> "TrainConfig":
        """This run's recipe as a refit: no validation, ``steps`` long, on this run's learning-rate schedule.

        The refits of both domains (``forecaster.market.refit``, ``synth train --refit-of``) train
        with it for the step of the validated run's lowest validation loss.
        """
        return dataclasses.replace(self, val_fraction=0.0, patience=0, max_steps=int(steps),
                                   schedule_steps=self.schedule_steps or self.max_steps, max_minutes=max_minutes)

    def micro_batch(self, world_size: int) -> int:
        """Sequences per forward pass on one rank."""
        per = world_size * self.grad_accum
        if self.batch_size % per:
            raise ConfigError(f"batch_size={self.batch_size} is not divisible by world_size*grad_accum={per}")
        return self.batch_size // per

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return dataclass_from_dict(cls, d, ConfigError, "training config")

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> "TrainConfig":
        """The preset's training defaults, with ``overrides`` (None values ignored) on top."""
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        base = {k: v for k, v in PRESETS[preset].items() if k not in _MODEL_KEYS}
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict({"preset": preset, **base})


def model_kind(preset: str) -> str:
    """``"flat"`` (token-level GPT) or ``"day"`` (DayGPT) for ``preset``."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset].get("model", "flat")


def parse_model_option(text: str) -> tuple[str, int | float | str]:
    """``"KEY=VALUE"`` (``--model-option``) -> (key, int, float or word); the key is checked by ``TrainConfig``."""
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
        raise ConfigError(f"--model-option {text!r}: write KEY=VALUE, e.g. state_dropout=0.5")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def model_config_for(preset: str, vocab_size: int, row_len: int, context_rows: int,
                     n_features: int = 0, options: dict | None = None) -> GPTConfig | DayGPTConfig:
    """The model config of ``preset`` for a tokenizer (vocab, tokens per row) and a context in rows.

    A ``GPTConfig`` (``block_size = context_rows * row_len``) for a flat preset; a
    ``DayGPTConfig`` with ``n_features`` per-row input features for a day preset.
    ``options``: shape keys that replace the preset's (``TrainConfig.model_options``); a key
    the model kind does not have is refused by its config.
    """
    kind = model_kind(preset)
    shape = {k: PRESETS[preset][k] for k in _MODEL_KEYS if k in PRESETS[preset] and k != "model"}
    shape.update(options or {})
    known = {f.name for f in dataclasses.fields(DayGPTConfig if kind == "day" else GPTConfig)}
    for key in shape:
        if key not in known:
            raise ConfigError(f"model option {key!r} is not a key of the {kind} model (preset {preset!r})")
    if kind == "day":
        return DayGPTConfig(vocab_size=vocab_size, row_len=row_len, n_features=n_features,
                            context_rows=context_rows, **shape)
    if n_features:
        raise ConfigError(f"preset {preset!r} is a flat model, which reads no input features (got {n_features})")
    return GPTConfig(vocab_size=vocab_size, row_len=row_len, block_size=context_rows * row_len, **shape)
