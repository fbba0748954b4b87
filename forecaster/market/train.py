"""Training a market run: panel -> model frame -> tokenizer -> time-split windows -> engine -> run folder.

:func:`train_panel_run` is the one place these steps live; ``forecaster train``,
the backtest's retraining and ``forecaster demo`` call it. Rerunning it on the
same folder resumes from the last checkpoint; while one process trains into a
folder another is refused, naming the first one's PID.

A day-level preset (``day-tiny``, ``day-small``) also gives the model a vector of
input features per day (``forecaster.market.inputs``): computed for the whole
panel, normalised with a mean and std fitted on the training days only (before
the validation start), and saved with their names in the run's ``inputs.json``
so that sampling rebuilds exactly these inputs.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from data_sources import catalog
from data_sources.panel import DEFAULT_START, PanelBuilder
from foundation.atomic import write_text
from foundation.errors import UserError
from forecaster.core.run import RunDir, check_run_target, is_main_process
from forecaster.core.tokenizer import TableTokenizer
from forecaster.core.training.config import TrainConfig, model_config_for, model_kind
from forecaster.core.training.engine import TrainResult, train
from forecaster.core.training.windows import make_datasets, panel_segment, val_start_of
from forecaster.market.features import model_frame
from forecaster.market.transforms import (TRANSFORMS, LogMeanReverting, YoyIndex, is_fitted_on_training, is_known,
                                          transforms_for)
from forecaster.market.inputs import InputNormalization, feature_names, features_for_history, yoy_index, yoy_index_levels
from forecaster.market.run import data_source_spec
from forecaster.market.tokenizer import DEFAULT_LEVELS, MAX_LEVELS, market_specs


class TrainInputError(UserError):
    """Data or settings a run cannot be trained from; ``param`` names the argument of ``train_panel_run``.

    A command line shows its own option in its place (``message_for``).
    """

    def __init__(self, detail: str, param: str | None = None) -> None:
        self.detail, self.param = detail, param
        super().__init__(f"{param}: {detail}" if param else detail)

    def message_for(self, option: str) -> str:
        """The message with ``option`` (e.g. ``--series``) instead of the parameter name."""
        return f"{option}: {self.detail}"


def train_panel_run(source: str | PanelBuilder, out: str | Path, cfg: TrainConfig, *, as_of=None,
                    series: list[str] | None = None, start=DEFAULT_START, val_start=None, data: str | None = None,
                    info: dict | None = None, progress: bool = True,
                    log: Callable[[str], None] | None = None,
                    transforms: dict[str, str] | None = None, bins: int | None = None) -> TrainResult:
    """Train (or resume) the GPT on the model frame of the panel as of ``as_of``, into the run folder ``out``.

    Parameters
    ----------
    source : a data spec ("embedded", a mapping or panel file, ...) or a ``PanelBuilder``.
    out : the run folder (created; an existing checkpoint there is resumed).
    cfg : the training configuration; ``cfg.preset`` gives the model size.
    transforms : {series: transform name} to model some series differently from the default
        (e.g. ``{"VIX": "level"}``). The default is the catalog's, except that a YoY inflation
        rate whose index the data has is ``yoy_index`` (its index's monthly change on release
        days, ``forecaster.market.yoy``). run.json records every series' transform, and
        forecasts from the run use what it records.
    bins : the most tokenizer bins per series (default ``market.tokenizer.DEFAULT_LEVELS``, 64).
    as_of : the data's as-of date (None: everything the source has). The tokenizer sees
        all of it; the weights never see a validation window.
    series : the series to model (default: the source's reference series). A series
        with no value before the validation start is left out with a note to ``log``
        when ``series`` is None, and a ``TrainInputError`` when it names it. Their order is
        the row order: a scenario's forced series moves the series after it on the same day.
    start : the panel's first date.
    val_start : the first validation date (default: the most recent ``cfg.val_fraction`` of days).
    data : what run.json records as the data source (default: ``source`` as an absolute
        path or a name; with a builder, its source's file or name).
    info : more run.json entries (e.g. ``retrained_from``), written over the computed ones.
    log : receives one-line notes (what was left out, the data and windows); rank 0 only.

    Returns the engine's ``TrainResult``. Ctrl-C finishes the step, saves a checkpoint and
    raises ``KeyboardInterrupt``; calling again resumes.
    """
    run = RunDir(check_run_target(out, "out"))
    rank0 = is_main_process()
    say = log if (log is not None and rank0) else (lambda _text: None)
    with run.lock_if_main(), contextlib.ExitStack() as scope:  # refused before reading any data
        builder = source if isinstance(source, PanelBuilder) else PanelBuilder(source, series=series, start=start)
        scope.enter_context(catalog.using(getattr(builder, "catalog", None)))  # its user series, while training
        as_of = pd.Timestamp(as_of) if as_of is not None else None
        panel = builder.build(as_of)
        if series is not None:
            panel = panel[list(series)]
        if start is not None:
            panel = panel[panel.index >= pd.Timestamp(start)]
        index_levels = yoy_index_levels(builder)
        chosen = _chosen_transforms(transforms, panel.columns, index_levels)
        # the split make_datasets would choose, known before tokenizing (it depends on the days only;
        # the model frame has the panel's days)
        if val_start is not None and cfg.val_fraction == 0:
            raise TrainInputError("a validation start was given with validation fraction 0 (no validation); "
                                  "give one or the other", param="val_start")
        split = pd.Timestamp(val_start) if val_start is not None else val_start_of(panel.index.values, cfg.val_fraction)
        chosen = _fit_transforms(chosen, panel, split)
        frame = model_frame(panel, transforms_for(panel.columns, chosen), index_levels=index_levels)
        frame = learnable_frame(frame, split, explicit=series is not None, log=say)
        if bins is not None and (isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= MAX_LEVELS):
            raise TrainInputError(f"must be a whole number from 2 to {MAX_LEVELS}, got {bins!r}", param="bins")
        tok = TableTokenizer.fit(frame, market_specs(frame, chosen, max_levels=bins or DEFAULT_LEVELS))
        day = model_kind(cfg.preset) == "day"
        feats = None
        if day:
            feats, inputs = row_inputs(panel[list(frame.columns)], index_levels, split, run.read_inputs()
                                       if run.latest() is not None else None)
        segments = [panel_segment(tok.encode(frame), frame.index, feats)]  # (days, tokens_per_row)
        train_ds, val_ds, split = make_datasets(segments, cfg.context_rows, cfg.val_fraction, split, rows=day)
        mcfg = model_config_for(cfg.preset, tok.vocab_size, tok.tokens_per_row, cfg.context_rows,
                                **({"n_features": feats.shape[1]} if day else {}), options=cfg.model_options)
        run_info = {"data": data or _data_spec(source), "source": builder.source.name,
                    "as_of": str(as_of.date()) if as_of is not None else None,
                    "start": str(pd.Timestamp(start).date()) if start is not None else None,
                    "series": list(frame.columns), "first_date": str(frame.index[0].date()),
                    "last_date": str(frame.index[-1].date()), "val_start": str(split.date()) if len(val_ds) else None,
                    "transforms": {c: t.name for c, t in zip(frame.columns, transforms_for(frame.columns, chosen))},
                    "release_frame": True, "bins": bins or DEFAULT_LEVELS,
                    **(info or {})}
        if rank0 and run.latest() is None:  # a fresh run (a resumed one checks the fingerprint instead)
            run.save_tokenizer(tok)
            _write_user_catalog(run, builder, frame.columns)
            if day:
                run.write_inputs(inputs)
        shape = (f"{feats.shape[1]} input features/row, windows of {cfg.context_rows} + 1 rows" if day else
                 f"windows of {cfg.context_rows} rows ({mcfg.block_size} tokens)")
        say(f"{len(frame):,} days x {len(frame.columns)} series -> {tok.tokens_per_row} tokens/row, "
            f"vocabulary {tok.vocab_size:,}; {shape}; "
            f"train {train_ds.time_range()[0]}..{train_ds.time_range()[1]} ({len(train_ds):,} windows), "
            + (f"validation from {split.date()} ({len(val_ds):,} windows)" if len(val_ds) else
               f"no validation: {cfg.max_steps} steps on every day (a refit)") + f"; engine {cfg.engine}")
        return train(mcfg, cfg, train_ds, val_ds, run.path, info=run_info, fingerprint=tok.fingerprint(),
                     progress=progress, valid_mask=tok.valid_mask() if day else None)


def row_inputs(panel: pd.DataFrame, index_levels: dict[str, pd.Series], split: pd.Timestamp,
               saved: dict | None = None) -> tuple[np.ndarray, dict]:
    """The day-level model's normalised input features ``(days, F)`` float32 and ``inputs.json``'s dict.

    ``panel`` : the modeled series' levels (the model frame's days and columns);
    ``index_levels`` : the YoY series' monthly index observations (``yoy_index_levels``). The
    normalisation is fitted on the days before the validation start ``split`` only, or
    taken from ``saved`` (a resumed run's ``inputs.json``, whose names must match).
    """
    names = feature_names(panel.columns)
    raw = features_for_history(panel, index_levels)  # (days, F), day d from data through d
    if saved is not None:
        if list(saved.get("names", [])) != names:
            raise TrainInputError("the run's inputs.json names other input features than this panel gives; "
                                  "use a new run folder", param="out")
        norm = InputNormalization.from_dict(saved["normalization"])
    else:
        train_days = panel.index[panel.index < split]
        if len(train_days) == 0:
            raise TrainInputError(f"no training day before the validation start {split.date()}", param="val_start")
        norm = InputNormalization.fit(raw, panel.index, names, train_days[-1])
    return norm.apply(raw).astype(np.float32), {"names": names, "normalization": norm.to_dict()}


def _write_user_catalog(run: RunDir, builder: PanelBuilder, columns) -> None:
    """Record the user series among ``columns`` in the run folder (``catalog.yaml``), so a forecast,
    a backtest or the Python API reads them without the catalog file that declared them."""
    from data_sources.user_catalog import to_yaml

    cat = getattr(builder, "catalog", None)
    user = set(cat.user_series) if cat is not None else set()
    specs = [cat[c] for c in map(str, columns) if c in user]
    if specs:
        write_text(run.catalog_file, to_yaml(specs))


def _fit_transforms(chosen: dict[str, str], panel: pd.DataFrame, split: pd.Timestamp) -> dict[str, str]:
    """``chosen`` with every transform fitted on the training days (``log_mr``) in its fitted form,
    fitted on the levels of the days before the validation start ``split`` only."""
    out = dict(chosen)
    train_days = panel.index < split
    for name, t in chosen.items():
        if t == LogMeanReverting.BASE:
            try:
                out[name] = LogMeanReverting.fit(panel.loc[train_days, name].to_numpy(dtype=np.float64), name).name
            except ValueError as e:
                raise TrainInputError(str(e), param="transforms") from None
    return out


def _chosen_transforms(transforms: dict[str, str] | None, columns, index_levels: dict | None = None) -> dict[str, str]:
    """The ``transforms`` argument checked (known series of the panel, known transform names), with
    ``yoy_index`` for every YoY inflation rate whose index the data has (``index_levels``) unless chosen."""
    chosen = dict(transforms or {})
    index_levels = {k: v for k, v in (index_levels or {}).items() if not v.empty}
    unknown = sorted(set(chosen) - set(map(str, columns)))
    if unknown:
        raise TrainInputError(f"{', '.join(unknown)} not among the series being trained", param="transforms")
    for name, t in chosen.items():
        if not is_known(t):
            raise TrainInputError(f"{name}: unknown transform {t!r} (known: {', '.join(TRANSFORMS)}, "
                                  f"{LogMeanReverting.BASE})", param="transforms")
        if is_fitted_on_training(t):  # a base run's fitted form: a retraining fits its own
            chosen[name] = t = LogMeanReverting.BASE
        if t == YoyIndex.name and yoy_index(name) is None:
            raise TrainInputError(f"{name}: yoy_index models a YoY inflation rate by its index, and {name} "
                                  "is not one", param="transforms")
        if t == YoyIndex.name and name not in index_levels:
            raise TrainInputError(f"{name}: yoy_index needs the monthly observations of {yoy_index(name)}, "
                                  "which the data does not have", param="transforms")
    for name in map(str, columns):
        if name in index_levels:
            chosen.setdefault(name, YoyIndex.name)
    return chosen


def learnable_frame(frame: pd.DataFrame, split: pd.Timestamp, explicit: bool,
                    log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """The model frame without series that have no value before the validation start ``split``.

    Such a series (XLRE, which starts in October 2015, trained as of 2017) is the
    "missing" token on every training day and real values on validation days: the model
    cannot learn it, and its validation loss grows as the model learns the rest, so early
    stopping would stop the whole run almost at once. Left out with a note to ``log``, or a
    ``TrainInputError`` (parameter ``series``) when ``explicit``: the caller asked for it by name.
    """
    seen = frame.loc[frame.index < split].notna().any()
    unseen = [str(c) for c in frame.columns if not seen[c]]
    if not unseen:
        return frame
    firsts = ", ".join(f"{c} (first value {_first_date(frame[c])})" for c in unseen)
    if explicit:
        raise TrainInputError(f"{firsts} has no value before the validation start {split.date()}; "
                              "drop it or use a later as-of date", param="series")
    if len(unseen) == frame.shape[1]:
        raise TrainInputError(f"no series has a value before the validation start {split.date()}")
    if log is not None:
        log(f"left out {firsts}: no value before the validation start {split.date()}, "
            "so the model could not learn it")
    return frame.drop(columns=unseen)


def _first_date(x: pd.Series) -> str:
    valid = x.first_valid_index()
    return "none" if valid is None else str(valid.date())


def _data_spec(source: str | PanelBuilder) -> str:
    """run.json's ``data`` for ``source``: a spec as an absolute path or name; a builder's source file or name."""
    if isinstance(source, str):
        return data_source_spec(source)
    src = source.source
    where = getattr(src, "mapping_path", None) or getattr(src, "path", None)
    return data_source_spec(str(where)) if where is not None else src.name
