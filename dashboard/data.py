"""What the dashboard reads from disk: the runs folder, forecasts, backtests, synthesis reports, panels.

Nothing here runs at import time. Loaders are cached by (path, modification
time), so a page change re-reads nothing and a forecast rewritten on disk is
picked up on the next request.

Layout of the runs folder (``forecaster dashboard --runs DIR``)::

    DIR/
      <run>/                      a training run (`forecaster train --out DIR/<run>`): run.json, metrics.jsonl, ...
        forecasts/<name>/         `forecaster forecast --run DIR/<run> --out DIR/<run>/forecasts/<name>`
        scenarios/<name>/         stress scenarios run from the dashboard (same format as a forecast)
        backtests/<name>/         `forecaster backtest --run DIR/<run> --out DIR/<run>/backtests/<name>`
      synth/<name>/               a credit-card synthesis evaluation (see SYNTH_LAYOUT)

``DIR`` may also be a single run directory (it then holds run.json itself).

Every name from a listing or from the browser is one folder name that passes
``foundation.names.is_safe_name``, and every folder read lies inside ``DIR``
once symbolic links are resolved (``names.inside``): a link leading out of the
runs folder is neither listed nor read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from foundation.errors import UserError
from foundation.names import MAX_NAME, NameError_, inside, is_safe_name
from forecaster.core.run import RunDir
from forecaster.core.training.checkpoint import CheckpointError
from forecaster.market.backtest.runner import load_fan, load_scores
from forecaster.market.forecast import Forecast
from forecaster.market.run import PanelRun, PanelSpec

SYNTH_LAYOUT = """\
DIR/synth/<name>/             the folder of `forecaster synth evaluate --out DIR/synth/<name>`:
  report.json                 every metric; "summary": {metric: {value, reference, target, pass}}, "columns": {column: score}
  summary.csv, report.html    the headline table and the self-contained report
  real_sample.parquet         held-out real rows (typed TabFormer table)
  synthetic_sample.parquet    synthetic rows (same columns)
  model/                      optional: the `forecaster synth train` run, for the page's Generate button
                              (or report.json "inputs": {"run": "<run dir>"})
"""
PRIVACY_METRICS = ("exact_copy_rate", "content_copy_rate", "self_duplicate_rate", "dcr_closer_to_train_share",
                   "longest_copied_merchant_run", "longest_copied_merchant_amount_run")


class DashboardDataError(UserError):
    """A folder the dashboard cannot read; the message says what to do."""


class BadKind(DashboardDataError, ValueError):
    """A forecast kind other than 'forecasts' or 'scenarios'."""


def _check_kind(kind: str) -> None:
    if kind not in ("forecasts", "scenarios"):
        raise BadKind(f"forecast kind {kind!r}: use 'forecasts' or 'scenarios'")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return -1


# -- the runs folder --------------------------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    name: str
    path: Path
    info: dict


def _stays_in(root: str | Path, path: Path) -> bool:
    """True when ``path``, symbolic links resolved, lies inside ``root``."""
    try:
        inside(root, path)
    except NameError_:
        return False
    return True


def _entries(root: str | Path, folder: Path) -> list[Path]:
    """Sub-folders of ``folder`` with a safe name that stay inside ``root`` (no hidden, staging or linked-out ones)."""
    if not folder.is_dir() or not _stays_in(root, folder):
        return []
    return sorted(p for p in folder.iterdir() if is_safe_name(p.name) and p.is_dir() and _stays_in(root, p))


def _checked(root: str | Path, folder: Path, what: str) -> Path:
    """``folder`` unless it leads outside ``root`` (a symbolic link): then a ``DashboardDataError``."""
    try:
        inside(root, folder, what)
    except NameError_ as exc:
        raise DashboardDataError(str(exc)) from None
    return folder


def list_runs(runs_dir: str | Path) -> list[RunInfo]:
    """Training runs under ``runs_dir`` (folders holding run.json), newest first; ``runs_dir`` itself if it is one."""
    root = Path(runs_dir)
    if not root.exists():
        return []
    candidates = [root] if RunDir(root).run_info.exists() else _entries(root, root)
    out = []
    for p in candidates:
        run = RunDir(p)
        if run.run_info.is_file():
            try:
                info = run.read_info()
            except (OSError, CheckpointError):  # unreadable or corrupt: listed, with nothing known about it
                info = {}
            out.append(RunInfo(p.name, p, info))
    out.sort(key=lambda r: _mtime(RunDir(r.path).run_info), reverse=True)
    return out


def _component(name: str, what: str) -> str:
    """``name`` as one folder name (it comes from the browser: nothing that could leave its parent folder)."""
    if not is_safe_name(name):
        shown = repr(name)[:90]
        raise DashboardDataError(f"bad {what} name {shown}: a {what} folder name has 1-{MAX_NAME} letters, "
                                 "digits, '-', '_' or '.'")
    return name


def run_path(runs_dir: str | Path, run: str) -> Path:
    """The folder of run ``run`` (refuses names that leave ``runs_dir``)."""
    for r in list_runs(runs_dir):
        if r.name == run:
            return r.path
    raise DashboardDataError(f"no run named {run!r} in {runs_dir}")


def run_info(runs_dir: str | Path, run: str) -> dict:
    """The run's run.json (data source, series, date ranges)."""
    for r in list_runs(runs_dir):
        if r.name == run:
            return r.info
    raise DashboardDataError(f"no run named {run!r} in {runs_dir}")


def _list_children(root: str | Path, folder: Path, marker: str) -> list[str]:
    found = [p for p in _entries(root, folder) if (p / marker).exists()]
    found.sort(key=lambda p: _mtime(p / marker), reverse=True)
    return [p.name for p in found]


def list_forecasts(runs_dir: str | Path, run: str, kind: str = "forecasts") -> list[str]:
    """Names of the forecasts (``kind='forecasts'``) or stress scenarios (``'scenarios'``) of a run, newest first."""
    _check_kind(kind)
    return _list_children(runs_dir, run_path(runs_dir, run) / kind, "forecast.json")



def list_backtests(runs_dir: str | Path, run: str) -> list[str]:
    """Backtest folders of a run (any non-empty folder under backtests/), newest first."""
    found = [p for p in _entries(runs_dir, run_path(runs_dir, run) / "backtests") if any(p.iterdir())]
    found.sort(key=_mtime, reverse=True)
    return [p.name for p in found]


def list_synth(runs_dir: str | Path) -> list[str]:
    """Synthesis evaluation folders under ``runs_dir/synth`` (those with report.json or synthetic.parquet)."""
    found = [p for p in _entries(runs_dir, Path(runs_dir) / "synth")
             if (p / "report.json").exists() or _first(p, SYNTHETIC_FILES)]
    found.sort(key=_mtime, reverse=True)
    return [p.name for p in found]


# -- forecasts ---------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def _load_forecast(path: str, stamp: float) -> Forecast:
    return Forecast.load(path)


def load_forecast(runs_dir: str | Path, run: str, name: str, kind: str = "forecasts"):
    """The ``Forecast`` in ``runs_dir/run/kind/name`` (cached until the folder's forecast.json changes)."""
    _check_kind(kind)
    folder = _checked(runs_dir, run_path(runs_dir, run) / kind / _component(name, "forecast"), "forecast folder")
    if not (folder / "forecast.json").exists():
        raise DashboardDataError(f"no forecast {name!r} in run {run!r} ({folder})")
    return _load_forecast(str(folder), _mtime(folder / "forecast.json"))


def read_metrics(runs_dir: str | Path, run: str) -> pd.DataFrame:
    """The run's learning curve (metrics.jsonl) as a table; empty when there is none."""
    path = RunDir(run_path(runs_dir, run)).metrics
    if not path.exists():
        return pd.DataFrame()
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written right now
    return pd.DataFrame(rows)


# -- panels ------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _builder(spec: PanelSpec):
    return spec.builder()


@lru_cache(maxsize=8)
def _panel(spec: PanelSpec, as_of: str | None) -> pd.DataFrame:
    return _builder(spec).build(as_of)


def panel_for_run(info: dict | None, as_of=None) -> pd.DataFrame:
    """The point-in-time panel a run was trained on (its data source and series), as of ``as_of`` (default: all).

    ``info`` is the run's run.json (``run_info``); without a run, the embedded offline data.
    """
    key = str(pd.Timestamp(as_of).date()) if as_of is not None else None
    return _panel(PanelSpec.of_run(info), key)


def builder_for_run(run_dir: str | Path):
    """A cached ``PanelBuilder`` over the run's data source, series and first date (for sampling scenarios)."""
    return _builder(PanelRun(run_dir).panel_spec)


# -- backtests ---------------------------------------------------------------------------------
@dataclass
class BacktestView:
    """A backtest folder written by ``forecaster backtest`` (layout in ``forecaster.market.backtest.runner``)."""

    path: Path
    config: dict
    scores: pd.DataFrame  # long table, one row per (origin, model, kind, name, horizon)
    skill: pd.DataFrame  # skill.csv of `forecaster backtest` (GPT over each baseline, bootstrap interval); may be empty

    @property
    def origins(self) -> list[str]:
        return sorted({str(pd.Timestamp(o).date()) for o in self.scores["origin"]}) if "origin" in self.scores else []

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(self.scores["model"])) if "model" in self.scores else []


@lru_cache(maxsize=4)
def _load_backtest(path: str, stamp: tuple) -> BacktestView:
    folder = Path(path)
    config = {}
    if (folder / "backtest.json").exists():
        try:
            config = json.loads((folder / "backtest.json").read_text())
        except json.JSONDecodeError:
            config = {}
    try:
        skill = pd.read_csv(folder / "skill.csv")
    except (FileNotFoundError, pd.errors.EmptyDataError):  # baselines only: no GPT, no skill table
        skill = pd.DataFrame()
    return BacktestView(folder, config, load_scores(folder), skill)


def load_backtest(runs_dir: str | Path, run: str, name: str) -> BacktestView:
    """Scores and settings of ``runs_dir/run/backtests/name`` (cached until an origin file changes)."""
    folder = _checked(runs_dir, run_path(runs_dir, run) / "backtests" / _component(name, "backtest"), "backtest folder")
    if not folder.is_dir():
        raise DashboardDataError(f"no backtest {name!r} in run {run!r}")
    origin_dir = folder / "origins"
    stamp = (_mtime(origin_dir), len(list(origin_dir.glob("*.parquet"))) if origin_dir.exists() else 0,
             _mtime(folder / "skill.csv"))
    return _load_backtest(str(folder), stamp)


@lru_cache(maxsize=32)
def _fan(path: str, origin: str, stamp: float) -> pd.DataFrame:
    return load_fan(path, origin)


def load_backtest_fan(bt: BacktestView, origin: str) -> pd.DataFrame:
    """Fan quantiles (model, series, step, q05..q95) and the realised path (model 'realised', q50) of one origin."""
    p = bt.path / "origins" / f"{pd.Timestamp(origin).date()}.fan.parquet"  # a date: cannot leave the folder
    if not p.exists():
        raise DashboardDataError(f"no fan file for origin {origin} in {bt.path}")
    return _fan(str(bt.path), str(pd.Timestamp(origin).date()), _mtime(p))


# -- synthesis ---------------------------------------------------------------------------------
@dataclass
class Synthesis:
    path: Path
    real: pd.DataFrame
    synthetic: pd.DataFrame
    report: dict


def _first(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).exists()), None)


REAL_FILES = ("real_sample.parquet", "real.parquet")
SYNTHETIC_FILES = ("synthetic_sample.parquet", "synthetic.parquet")


@lru_cache(maxsize=4)
def _load_synth(path: str, stamp: tuple) -> Synthesis:
    folder = Path(path)
    real_p, syn_p = _first(folder, REAL_FILES), _first(folder, SYNTHETIC_FILES)
    real = pd.read_parquet(real_p) if real_p else pd.DataFrame()
    synthetic = pd.read_parquet(syn_p) if syn_p else pd.DataFrame()
    report = {}
    if (folder / "report.json").exists():
        try:
            report = json.loads((folder / "report.json").read_text())
        except json.JSONDecodeError as exc:
            raise DashboardDataError(f"{folder / 'report.json'} is not valid JSON ({exc})") from None
    return Synthesis(folder, real, synthetic, report)


def load_synth(runs_dir: str | Path, name: str) -> Synthesis:
    """A synthesis evaluation folder (layout in ``SYNTH_LAYOUT``)."""
    folder = _checked(runs_dir, Path(runs_dir) / "synth" / _component(name, "synthesis"), "synthesis folder")
    if not folder.is_dir():
        raise DashboardDataError(f"no synthesis folder {name!r} in {Path(runs_dir) / 'synth'}")
    stamp = tuple(_mtime(folder / f) for f in (*REAL_FILES, *SYNTHETIC_FILES, "report.json"))
    return _load_synth(str(folder), stamp)


def synth_model_dir(syn: Synthesis) -> Path | None:
    """The synthesis run to generate from: ``model/`` in the folder, else report.json's inputs.run."""
    if (syn.path / "model").is_dir():
        return syn.path / "model"
    run = (syn.report.get("inputs") or {}).get("run")
    return Path(run) if run and Path(run).is_dir() else None


def finite_fraction(x: np.ndarray) -> float:
    """Share of finite values (how many sampled cells decoded to a number)."""
    return float(np.isfinite(x).mean()) if x.size else 0.0
