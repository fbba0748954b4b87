"""Shared fixtures: the real data in ../shared/data and the panel built from it.

Tests that need the shared data fail loudly when it is missing (CI always has
it); they never skip silently. FORECASTER_SHARED_DATA overrides its location.
"""
from __future__ import annotations

import os
from pathlib import Path

# Tests use tiny models: one intra-op thread per process is faster than two
# fighting over 2 cores (measured: 7 s instead of 70-90 s for the sampler tests
# on a loaded machine), and the 2-process DeepSpeed tests inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SHARED_MAPPING = FIXTURES / "shared_data.yaml"


def load_benchmark(name: str):
    """Import ``benchmarks/<name>.py`` (not a package) as module ``name``; a generator for a fixture:
    it stays in ``sys.modules`` while used (dataclasses look their module up) and is removed after."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(name, None)


def shared_data_dir() -> Path:
    env = os.environ.get("FORECASTER_SHARED_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real historical data (../shared/data)."""
    folder = shared_data_dir()
    if not (folder / "README.md").exists():
        pytest.fail(f"shared data not found at {folder}; set FORECASTER_SHARED_DATA")
    return folder


@pytest.fixture(scope="session")
def shared_mapping(shared_data: Path, tmp_path_factory) -> Path:
    """The mapping file describing ../shared/data for the CSV-folder source."""
    if shared_data == (REPO.parent / "shared" / "data").resolve():
        return SHARED_MAPPING
    import yaml

    doc = yaml.safe_load(SHARED_MAPPING.read_text())
    doc["folder"] = str(shared_data)
    path = tmp_path_factory.mktemp("mapping") / "shared_data.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="session")
def shared_builder(shared_mapping: Path):
    """A PanelBuilder over the real data (raw series read once per test session)."""
    from data_sources.panel import PanelBuilder

    return PanelBuilder(str(shared_mapping))


@pytest.fixture(scope="session")
def shared_panel(shared_builder):
    """The full real point-in-time panel (business days from 1990, 21 reference series)."""
    return shared_builder.build()


@pytest.fixture(scope="session")
def tabformer_csv(shared_data: Path) -> Path:
    """The shared TabFormer sample: 19,963 real transactions of one user (../shared/data/tabformer)."""
    return shared_data / "tabformer" / "User0_credit_card_transactions.csv"
