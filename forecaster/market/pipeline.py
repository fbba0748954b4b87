"""From a trained run to a forecast: history in, joint level paths out.

``ForecastPipeline.from_run(RUN_DIR)`` loads the model, the tokenizer and the run
info; ``predict`` takes the point-in-time panel as of the forecast origin, turns it
into the model frame, tokenizes the most recent rows as the prompt, samples N
paths with the KV-cache sampler (forcing scenario constraints), decodes them, and
integrates returns and differences into levels from the last observed values.

The run's model is a flat ``GPT`` (sampled by ``Sampler``) or a day-level ``DayGPT``
(sampled by ``DaySampler``, which also reads each day's input vector: the history's at
the origin, then one per sampled day from ``day_inputs.PathFeatures``).
"""
from __future__ import annotations

import functools
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from data_sources import catalog
from data_sources.calendar import business_days_after
from data_sources.panel import PanelBuilder
from forecaster.market.day_inputs import DayInputs, PathFeatures, check_inputs, prompt_features, read_inputs
from forecaster.market import yoy
from forecaster.market.features import integrate, model_frame, release_days, release_series, transforms_for
from forecaster.market.forecast import Forecast, ForecastError, check_horizon
from forecaster.market.inputs import yoy_index_levels
from forecaster.market.run import PanelRun
from forecaster.core.daymodel import DayGPT
from forecaster.core.device import Device, as_device, model_device
from forecaster.core.daysampler import DaySampler
from forecaster.core.model import GPT
from forecaster.core.sampler import Sampler, SamplingConfig, make_generator
from forecaster.market.scenario import Scenario, ScenarioError, forced_model_values
from forecaster.core.tokenizer import TableTokenizer


def _data_used(panel) -> dict:
    """``data`` (the source's file or name) and ``source`` (its short name) of what ``predict`` was given."""
    if not isinstance(panel, PanelBuilder):
        return {"data": "a panel passed to predict", "source": "dataframe"}
    src = panel.source
    where = getattr(src, "mapping_path", None) or getattr(src, "path", None)
    return {"data": str(where) if where is not None else src.name, "source": src.name}


def _timestamp(as_of) -> pd.Timestamp:
    try:
        return pd.Timestamp(as_of)
    except (TypeError, ValueError):
        raise ForecastError(f"as_of must be a date such as '2018-12-31', got {as_of!r}") from None


def _release_transform(name: str, drops: np.ndarray) -> Callable[[int], yoy.AtRelease]:
    """A scenario's transform of ``yoy_index`` series ``name`` at its k-th release: the drop-out is known for a year."""
    def at(k: int) -> yoy.AtRelease:
        if k > len(drops) or not np.isfinite(drops[k - 1]):
            raise ScenarioError(f"constraint on {name}: its release {k} after the origin drops a month out of the "
                                "12-month window that is not yet known; constrain at most the first 12 releases")
        return yoy.AtRelease(float(drops[k - 1]))
    return at


def _in_run_catalog(method):
    """Run ``method`` with the run's user series in the active catalog (``data_sources.catalog.using``):
    the run folder's ``catalog.yaml``, else the catalog of a ``PanelBuilder`` given as the data."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        cat = self.catalog
        data = args[0] if args else kwargs.get("data")
        if cat is None and isinstance(data, PanelBuilder):
            cat = getattr(data, "catalog", None)
        with catalog.using(cat):
            return method(self, *args, **kwargs)
    return wrapper


def resolve_sampling(calibration, sampling: SamplingConfig | None, temperature: float | None,
                     top_k: int | None, top_p: float | None) -> tuple[SamplingConfig, bool]:
    """The ``SamplingConfig`` of a ``predict`` call and whether its temperature is ``calibration``'s.

    Give either ``sampling`` or ``temperature`` / ``top_k`` / ``top_p`` (a ``ForecastError`` for
    both); without a temperature, the calibrated one (``forecaster calibrate``), else 1.
    """
    if sampling is not None and (temperature, top_k, top_p) != (None, None, None):
        raise ForecastError("give either sampling or temperature/top_k/top_p, not both")
    if sampling is not None:
        return sampling, False
    calibrated = temperature is None and calibration is not None
    if temperature is None:
        temperature = calibration.temperature if calibration is not None else 1.0
    return SamplingConfig(temperature, top_k, top_p), calibrated


def calibration_record(calibration) -> dict:
    """Where a forecast's temperature came from, for its metadata: the value and the validation window."""
    return {"temperature": calibration.temperature,
            "validation": [calibration.validation_start, calibration.validation_end]}


class ForecastPipeline:
    """Model + tokenizer + sampler for one run directory.

    Parameters
    ----------
    model, tokenizer : as trained together (the tokenizer fingerprint was checked).
    run_dir : where they came from (recorded in every forecast's metadata).
    info : the run's ``run.json`` (data source, series, date range).
    inputs : for a ``DayGPT`` with input features, ``(feature names, InputNormalization)`` as
        saved in the run's ``inputs.json``; the names must be ``feature_names(series)``.
    """

    def __init__(self, model: GPT | DayGPT, tokenizer: TableTokenizer, run_dir: str | Path | None = None,
                 info: dict | None = None, model_hash: str | None = None, inputs: DayInputs | None = None,
                 device: Device | str | None = None) -> None:
        # device: where the model, its KV caches and the sampler's generator live (None: where the model is)
        self.device = model_device(model) if device is None else as_device(device)
        self.model = model.to(self.device.torch).eval()
        self.tokenizer = tokenizer
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.info = dict(info or {})
        self.model_hash = model_hash
        self.series = list(tokenizer.columns)
        # what the run was trained with (run.json "transforms"); runs written before it was recorded: the catalog's
        self.transforms = transforms_for(self.series, self.info.get("transforms"))
        # release series are "no release" between releases (run.json "release_frame"; PanelRun: False for older runs)
        self.release_frame = bool(self.info.get("release_frame", True))
        self._own_index: dict | None = None  # the run's own source's YoY index observations, read when first needed
        # the run's calibrated sampling temperature (forecaster.market.calibration), the default of predict
        self.calibration = None
        # the run's drift tilts of its mean-reverting series (forecaster.market.drift), applied by predict
        self.drift = None
        self.catalog = None  # the run's user series (its catalog.yaml), active while it forecasts
        self.is_day = isinstance(model, DayGPT)
        if self.is_day:
            check_inputs(inputs, self.series, model.config.n_features)
            self.inputs = inputs if model.config.n_features else None
            self.sampler = None  # a DaySampler is built per forecast (its callback holds the paths' state)
        else:
            self.inputs = None
            self.sampler = Sampler(model, torch.from_numpy(tokenizer.valid_mask()))

    @classmethod
    def from_run(cls, run_dir: str | Path, which: str = "best", device: Device | str | None = None
                 ) -> "ForecastPipeline":
        """The pipeline of a trained run folder: its tokenizer, its ``which`` weights ("best" or "last"), its run.json.

        ``device``: a resolved ``Device`` or a ``--device`` spec (``"auto"``, ``"cuda:0"``; None: the CPU).

        A folder that is not a trained run, or whose tokenizer is not the model's, is a ``CheckpointError``.
        """
        run = PanelRun(run_dir)
        tok = run.load_tokenizer()
        model = run.load_model(which, fingerprint=tok.fingerprint())
        inputs = read_inputs(run.path) if isinstance(model, DayGPT) else None
        pipe = cls(model, tok, run.path, run.info, run.best_weights_sha256(), inputs=inputs, device=device)
        from forecaster.market.calibration import load_calibration  # deferred: it imports the backtest runner

        pipe.calibration = load_calibration(run.path)
        if isinstance(model, DayGPT):
            from forecaster.market.drift import load_drift

            pipe.drift = load_drift(run.path, pipe.model_hash)
        if run.catalog_file.is_file():  # user series the run was trained on
            from data_sources.user_catalog import load_catalog

            pipe.catalog = load_catalog(run.catalog_file, catalog.active())
        return pipe

    def panel_builder(self, data: str | Path | None = None) -> PanelBuilder:
        """The run's panel builder (its data source, series and start), or the same on another ``data`` source."""
        if self.run_dir is None:
            return PanelBuilder(str(data or "embedded"), series=self.series)
        return PanelRun(self.run_dir).panel_builder(None if data is None else str(data))

    def _with_own_index(self, index_levels: dict | None) -> dict | None:
        """``index_levels`` completed from the run's own data source where it lacks a YoY series' index.

        A bare panel, or a file of YoY rates, has no index observations; the source the run was
        trained on has. ``predict`` reads only the months released by the origin, so this adds
        no look-ahead; months the run's source does not have stay unknown (a NaN rate, reported).
        """
        wanted = [c for c in self.series if yoy.yoy_index(c) is not None]
        if self.run_dir is None or all(c in (index_levels or {}) for c in wanted):
            return index_levels
        if self._own_index is None:
            try:
                self._own_index = yoy_index_levels(self.panel_builder())
            except Exception:  # the run's source is gone or unreadable: nothing to add
                self._own_index = {}
        return {**self._own_index, **(index_levels or {})} or index_levels

    # -- pieces --------------------------------------------------------------------------
    def _roundtrip(self, name: str, value: float) -> float:
        """``value`` of column ``name`` after tokenization (what the model will be forced to see)."""
        frame = pd.DataFrame({c: [np.nan] for c in self.series})
        frame[name] = [value]
        ids, clamped = self.tokenizer.encode_with_report(frame)
        if clamped.get(name, 0):
            codec = self.tokenizer.codec(name)
            raise ScenarioError(
                f"forced {name} value {value:.6g} (model units) is outside the tokenizer's range"
                f"{' ' + str(codec.bounds()) if hasattr(codec, 'bounds') else ''}; use a smaller shock"
            )
        return float(self.tokenizer.decode(ids)[name].iloc[0])

    def _forced_ids(self, scenario: Scenario | None, last_levels: dict, dates: pd.DatetimeIndex,
                    drops: dict[str, np.ndarray] | None = None
                    ) -> tuple[torch.Tensor | None, pd.DataFrame | None, dict[str, int]]:
        """Forced ids ``(H, R)`` (-1: free), the scenario's forced model values, and the days per series forced
        to "no release".

        Releases, not daily noise (``forecaster.market.features``): a weekly, monthly or
        quarterly series gets a new value only on the days its publication rule brings one
        into the panel (known in advance from the calendar). On every other day it is forced
        to the "no release" token (the missing token; a run from before that rule: a zero
        change); on its release days "missing" is not a valid draw (``_valid_mask``), so the
        model draws the release's change. A scenario's constraint on such a series moves it
        on its release days; on a daily series, on the days the constraint gives. ``drops``:
        the drop-outs of each ``yoy_index`` series' first 12 releases (``yoy.dropouts``).
        """
        horizon = len(dates)
        released = [c for c in release_series(self.series, self.transforms) if np.isfinite(last_levels[c])]
        if not self.release_frame:  # zero changes between releases: only where zero is a token of its own
            released = [c for c in released if self._roundtrip(c, 0.0) == 0.0]
        on = release_days(released, dates)
        values = None
        if scenario is not None and scenario.constraints:
            unknown = [c.series for c in scenario.constraints if c.series not in self.series]
            if unknown:
                raise ScenarioError(f"series {', '.join(unknown)} not modeled by this run "
                                    f"(it models: {', '.join(self.series)})")
            values = forced_model_values(scenario, last_levels, horizon, self._roundtrip,
                                         dict(zip(self.series, self.transforms)),
                                         release_days=on if self.release_frame else None,
                                         at_release={c: _release_transform(c, d) for c, d in (drops or {}).items()})
        if not released and values is None:
            return None, None, {}
        frame = pd.DataFrame(np.nan, index=range(horizon), columns=self.series)
        if values is not None:
            for c in values.columns:
                frame[c] = values[c].to_numpy()
        if not self.release_frame:
            for c in released:
                free = ~on[c] & frame[c].isna().to_numpy()  # the scenario's constraint wins over the calendar
                frame.loc[free, c] = 0.0
        ids = self.tokenizer.encode(frame)  # (H, R)
        forced = np.full_like(ids, -1)
        for name in frame.columns:
            rows = frame[name].notna().to_numpy()
            sl = self.tokenizer.column_slots(name)
            forced[rows, sl] = ids[rows, sl]
            if self.release_frame and name in on:
                forced[~on[name], sl.start] = self.tokenizer.missing_id(name)
        return torch.from_numpy(forced), values, {c: int((~on[c]).sum()) for c in released}

    def _valid_mask(self, last_levels: dict[str, float]) -> torch.Tensor:
        """(R, V) the ids a path may draw per slot: the bins of each series' fitted range, and
        "missing" only for a series that has no value at the origin.

        A series known on the as-of date stays known: a missing cell in its path would only
        shrink the sample its quantiles and regimes come from. The tokenizer's headroom bins
        (moves beyond any the data up to the run's as-of date made, e.g. a -36 % day of the
        S&P 500) are never drawn: the model has never seen them (``fitted_mask``). A scenario
        may still force them (``_force_mask``).
        """
        mask = torch.from_numpy(self.tokenizer.fitted_mask())
        for name in self.series:
            missing = self.tokenizer.missing_id(name)
            if missing is not None and np.isfinite(last_levels[name]):
                mask[self.tokenizer.column_slots(name).start, missing] = False
        return mask

    def _force_mask(self) -> torch.Tensor:
        """(R, V) the ids a forecast may force: every id the tokenizer can write (the "no release" token too)."""
        return torch.from_numpy(self.tokenizer.valid_mask())

    def _sampler_for(self, last_levels: dict[str, float]) -> Sampler:
        """The flat model's sampler with the valid ids of ``_valid_mask``."""
        return Sampler(self.model, self._valid_mask(last_levels), keep_rows=self.sampler.keep_rows,
                       step_mask=self.sampler.step_mask, force_mask=self.sampler.valid_mask)

    def prompt_rows(self, n_days: int) -> int:
        """Model-frame rows in the prompt given ``n_days`` of panel history (the first day has no change).

        Flat model: its window less the row being drawn. Day model: up to ``context_rows``.
        """
        if self.is_day:
            return min(self.model.config.context_rows, n_days - 1)
        return self.sampler.window_rows - 1

    def day_sampling(self, panel: pd.DataFrame, index_levels, last_levels: dict[str, float], n_paths: int,
                     dates: pd.DatetimeIndex, n_prompt: int, drift_temperature: float | None = None
                     ) -> tuple[DaySampler, np.ndarray | None, PathFeatures | None]:
        """The day model's sampler, prompt features ``(n_prompt, F)`` and callback for one forecast.

        ``panel``: levels up to the origin (the run's series); ``dates``: the days to sample.
        Without input features (F = 0) the features and the callback are None.
        ``drift_temperature``: apply the run's drift tilts (``self.drift``) for sampling at this
        temperature (None: no tilt).
        """
        if self.inputs is None:
            return DaySampler(self.model, self._valid_mask(last_levels), force_mask=self._force_mask()), None, None
        norm = self.inputs[1]
        features = prompt_features(panel, index_levels, norm, n_prompt)
        callback = PathFeatures(self.tokenizer, self.transforms, panel, index_levels, norm, n_paths, dates, n_prompt)
        tilt = None
        if self.drift is not None and drift_temperature is not None:
            from forecaster.market.drift import DriftTilt

            tilt = DriftTilt(self.tokenizer, self.drift, lambda: callback.levels, drift_temperature)
        return (DaySampler(self.model, self._valid_mask(last_levels), next_features=callback, step_mask=tilt,
                           force_mask=self._force_mask()), features, callback)

    # -- the job ---------------------------------------------------------------------------
    @_in_run_catalog
    def predict(
        self,
        data: pd.DataFrame | PanelBuilder | str | None = None,
        as_of=None,
        n_paths: int = 100,
        horizon: int = 250,
        seed: int = 0,
        scenario: Scenario | None = None,
        sampling: SamplingConfig | None = None,
        history_days: int = 500,
        progress: Callable[[int], None] | None = None,
        *,
        index_levels: dict[str, pd.Series] | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        drift: bool = True,
    ) -> Forecast:
        """Sample ``n_paths`` joint paths of ``horizon`` business days after ``as_of``.

        Parameters
        ----------
        data : where the history comes from: ``None`` for the run's own data source; a
            source spec as ``--data`` takes it (``"embedded"``, a mapping or panel file); a
            ``PanelBuilder``, which builds the panel as of ``as_of`` (no look-ahead by
            construction); or a point-in-time panel (rows after ``as_of`` are dropped).
        as_of : forecast origin; the last panel day on or before it is used (``None``: the
            last day of the data).
        seed : the same seed gives the same paths.
        scenario : constraints that fix some series' paths; the rest are sampled given them.
        sampling : a ``SamplingConfig``, or give ``temperature`` / ``top_k`` / ``top_p``.
        progress : called with the number of sampled days so far.
        index_levels : ``{yoy series: its index's monthly observations}`` (``yoy_index_levels``)
            when ``data`` is a bare panel: a YoY rate modeled as ``yoy_index`` needs them, as do
            a day-level model's drop-out inputs. A source or ``PanelBuilder`` gives them itself.
        drift : apply the run's drift calibration (``drift.json``, ``forecaster.market.drift``) where
            it has one; False samples the model's own distribution.

        A day-level model also reads each day's input vector: the prompt days' from the history
        (with the monthly index observations of the YoY series when ``data`` is a source), then
        each sampled day's from the path's own levels.

        Returns
        -------
        Forecast with paths (n_paths, horizon, series) in levels. Its ``meta`` records, besides
        provenance, the data used (``data``, ``source``), prompt values clamped by the tokenizer
        per series (``clamped``), missing forecast cells (``nan_cells``, ``nan_cells_by_series``)
        and one line per such problem in ``warnings``. A series with a value at the origin is
        never sampled as missing.
        """
        sampling, calibrated = resolve_sampling(self.calibration, sampling, temperature, top_k, top_p)
        if data is None or isinstance(data, (str, Path)):
            data = self.panel_builder(data)
        check_horizon(horizon)
        if isinstance(n_paths, bool) or not isinstance(n_paths, (int, np.integer)) or n_paths < 1:
            raise ForecastError(f"n_paths must be a whole number of at least 1, got {n_paths!r}")
        data_used = _data_used(data)
        panel = data.build(None if as_of is None else _timestamp(as_of)) if isinstance(data, PanelBuilder) else data
        as_of = panel.index[-1] if as_of is None else _timestamp(as_of)
        missing = [c for c in self.series if c not in panel.columns]
        if missing:
            raise ForecastError(f"the data lacks series this run models: {', '.join(missing)}")
        if as_of < panel.index[0] or as_of > panel.index[-1] + pd.Timedelta(days=7):
            raise ForecastError(
                f"as-of date {as_of.date()} is outside the data ({panel.index[0].date()} .. {panel.index[-1].date()})"
            )
        if isinstance(data, PanelBuilder):
            index_levels = yoy_index_levels(data)
        index_levels = self._with_own_index(index_levels)
        panel = panel.loc[:as_of, self.series]
        need = self.prompt_rows(len(panel))
        if need < 1 or len(panel) < need + 1:
            raise ForecastError(f"as-of date {as_of.date()} leaves {len(panel)} days of history; "
                                f"the model needs {max(need, 1) + 1}")
        try:
            frame = model_frame(panel, self.transforms, releases=self.release_frame, index_levels=index_levels)
            drops = {c: yoy.dropouts(c, yoy.needs_index(c, index_levels), panel.index[-1])
                     for c in yoy.yoy_columns(self.series, self.transforms)}
        except yoy.IndexMissing as e:
            raise ForecastError(str(e)) from None
        prompt_ids, clamped = self.tokenizer.encode_with_report(frame.iloc[-need:])
        last = panel.iloc[-1]
        last_levels = {c: float(last[c]) for c in self.series}
        dates = business_days_after(panel.index[-1], horizon)
        forced, forced_values, quiet = self._forced_ids(scenario, last_levels, dates, drops)

        gen = make_generator(seed, self.device.torch)
        with self.device.autocast():  # bf16 on GPUs that support it (core.device); a no-op on the CPU
            if self.is_day:
                tilted = drift and self.drift is not None
                sampler, features, _ = self.day_sampling(
                    panel, index_levels, last_levels, n_paths, dates, need,
                    drift_temperature=(sampling or SamplingConfig()).temperature if tilted else None)
                conditioned = scenario is not None and bool(scenario.constraints)
                ids = sampler.sample(torch.from_numpy(prompt_ids), n_paths, horizon, gen, sampling, forced,
                                     progress, features=None if features is None else torch.from_numpy(features),
                                     resample=conditioned)
                resampling = sampler.resampling if conditioned else None
            else:
                resampling = None
                sampler = self._sampler_for(last_levels)
                ids = sampler.sample(torch.from_numpy(prompt_ids.reshape(-1)), n_paths, horizon, gen, sampling,
                                     forced, progress)
        ids = ids.cpu()
        decoded = self.tokenizer.decode(ids.reshape(-1, ids.shape[-1]).numpy())
        steps = decoded[self.series].to_numpy(dtype=np.float64).reshape(n_paths, horizon, len(self.series))
        levels = integrate(np.array([last_levels[c] for c in self.series]), steps, self.transforms,
                           [drops.get(c) for c in self.series])
        origin = panel.index[-1]
        clamped = {k: int(v) for k, v in clamped.items() if v}
        nan_cells = {c: int(n) for c, n in zip(self.series, np.isnan(levels).sum(axis=(0, 1))) if n}
        warnings = [f"{c}: {n} of the {need} prompt values lay beyond the tokenizer's fitted range and were clamped"
                    for c, n in clamped.items()]
        yoy_inputs = self.inputs is not None and any(n.startswith("yoy_dropout.") for n in self.inputs[0])
        if yoy_inputs and index_levels is None:
            warnings.append("the YoY drop-out inputs are unknown (the data was a panel, not a source with the "
                            "monthly index observations); pass a source or PanelBuilder for them")
        for c, n in nan_cells.items():
            why = f"; it had no value on {origin.date()}" if not np.isfinite(last_levels[c]) else ""
            warnings.append(f"{c}: {n} of {n_paths * horizon} forecast cells are missing (NaN{why}); "
                            "its quantiles and regimes come from the other cells only")
        meta = {
            "as_of": str(origin.date()),
            "requested_as_of": str(as_of.date()),
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "model_sha256": self.model_hash,
            "tokenizer_fingerprint": self.tokenizer.fingerprint(),
            "seed": int(seed),
            "device": str(self.device),  # the same seed on the same device gives the same paths
            "precision": "bf16" if self.device.bf16 else "fp32",
            "n_paths": int(n_paths),
            "horizon": int(horizon),
            "sampling": vars(sampling or SamplingConfig()),
            # where the temperature came from: the run's calibration window, or None (given, or the default 1)
            "calibration": calibration_record(self.calibration) if calibrated else None,
            # the drift tilts applied (forecaster.market.drift): the series and the as-of date of their fit
            "drift": ({"series": sorted(self.drift.series), "as_of": self.drift.as_of,
                       **({"pairs": [pr.name for pr in self.drift.pairs]} if self.drift.pairs else {})}
                      if self.is_day and drift and self.drift is not None else None),
            "scenario": scenario.to_dict() if scenario else None,
            "prompt_days": int(need),
            **data_used,
            "run_data": self.info.get("data"),
            "clamped": clamped,
            "nan_cells": int(sum(nan_cells.values())),
            "nan_cells_by_series": nan_cells,
            "warnings": warnings,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        meta["no_release_days"] = quiet  # per series: days forced to "no release" by the publication calendar
        if resampling is not None:  # the day model conditions on the scenario by importance resampling
            meta["scenario_resampling"] = {"days_resampled": int(resampling["rows"]),
                                           "min_effective_paths": round(float(resampling["min_ess"]), 1)}
        if forced_values is not None:  # what was forced, in model units, for the record
            meta["forced_days"] = {c: int(forced_values[c].notna().sum()) for c in forced_values.columns}
        return Forecast(origin, dates, self.series, levels, panel.iloc[-history_days:].copy(), meta)
