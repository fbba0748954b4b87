"""A market run folder: a ``RunDir`` whose run.json names the panel it was trained on.

``run.json`` of a market run (written by ``forecaster.market.train.train_panel_run``)
records, besides what the core writes (tokenizer fingerprint, ranges, engine):

    data        the data spec: "embedded", "online", "store", or a file's absolute path
    source      the source's short name (e.g. "csv:shared_data.yaml")
    series      the modeled series, in the tokenizer's column order
    start       the first panel date (YYYY-MM-DD)
    as_of       the data's as-of date (YYYY-MM-DD), None for everything
    first_date, last_date, val_start   the frame's first and last days and the validation start
    transforms  {series: modeling transform} the run was trained with
    release_frame  true: release series take the "no release" token between releases
                (``forecaster.market.features``)

A run.json from before ``transforms`` and ``release_frame`` were recorded is read with
what was then the rule (``LEGACY_FRAME``): VIX as a level, zero changes between releases.

The panel a run forecasts from is rebuilt from these with :meth:`PanelRun.panel_builder`,
the one place that knows their defaults (``PanelSpec``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from data_sources.panel import DEFAULT_START, PanelBuilder
from forecaster.core.run import RunDir

DEFAULT_DATA = "embedded"
NAMED_SOURCES = ("embedded", "online", "store")  # recorded as they are; anything else is a file
#: the model-frame entries of a run.json that does not record them (runs trained before they were)
LEGACY_FRAME = {"transforms": {"VIX": "level"}, "release_frame": False}


def data_source_spec(data: str) -> str:
    """A data spec as recorded in run.json: a named source as it is, a file as an absolute path.

    So a run forecasts from any working directory.
    """
    if data in NAMED_SOURCES:
        return data
    return str(Path(data).expanduser().resolve())


@dataclass(frozen=True)
class PanelSpec:
    """Where a run's panel comes from: data spec, series and first date (hashable, so a cache key).

    The defaults are those of a run.json that does not say: the embedded data, the
    source's reference series, the panel's default first date.
    """

    data: str = DEFAULT_DATA
    series: tuple[str, ...] | None = None
    start: str = str(DEFAULT_START.date())

    @classmethod
    def of_run(cls, info: dict | None) -> "PanelSpec":
        """The spec recorded in a run.json dict (``None`` or ``{}``: the defaults)."""
        info = info or {}
        default = cls()
        return cls(data=str(info.get("data") or default.data),
                   series=tuple(info["series"]) if info.get("series") else None,
                   start=str(info.get("start") or default.start))

    def builder(self) -> PanelBuilder:
        """A ``PanelBuilder`` over this spec (reads the source's raw series once)."""
        return PanelBuilder(self.data, series=list(self.series) if self.series else None, start=self.start)


class PanelRun(RunDir):
    """A trained market run: ``RunDir`` plus the panel fields of its run.json.

    ``info`` is read once per object (a ``PanelRun`` is a run being used, not one being
    trained); make a new one to see a rewritten run.json.
    """

    @cached_property
    def info(self) -> dict:
        """run.json, with ``LEGACY_FRAME``'s entries where it lacks them."""
        return {**LEGACY_FRAME, **self.read_info()}

    @property
    def panel_spec(self) -> PanelSpec:
        return PanelSpec.of_run(self.info)

    @property
    def data(self) -> str:
        """The data spec the run was trained on."""
        return self.panel_spec.data

    @property
    def series(self) -> list[str] | None:
        """The modeled series (None: a run.json that does not list them)."""
        series = self.panel_spec.series
        return list(series) if series is not None else None

    @property
    def start(self) -> str:
        """The first panel date, YYYY-MM-DD."""
        return self.panel_spec.start

    @property
    def as_of(self) -> str | None:
        """The as-of date of the training data, YYYY-MM-DD (None: all the data there was)."""
        as_of = self.info.get("as_of")
        return str(as_of) if as_of else None

    @property
    def trained_until(self) -> pd.Timestamp | None:
        """The last day the run's data holds (``last_date``, else ``as_of``); None when run.json says neither."""
        last = self.info.get("last_date") or self.info.get("as_of")
        return pd.Timestamp(last) if last else None

    def panel_builder(self, data: str | None = None, *, series: list[str] | None = None,
                      start: str | None = None) -> PanelBuilder:
        """A ``PanelBuilder`` over the run's own source, series and first date, each replaceable.

        ``data``: another data spec (e.g. fresher data for the same series).
        """
        spec = self.panel_spec
        return dataclasses.replace(spec, data=data or spec.data,
                                   series=tuple(series) if series is not None else spec.series,
                                   start=str(start) if start is not None else spec.start).builder()
