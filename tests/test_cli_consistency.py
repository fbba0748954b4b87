"""One flag name per idea across the commands, --version, shell completion, and clean logs off a terminal."""
from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version

import pytest
import typer

from forecaster.cli import app, main

# Commands that sample from the model, and so take the torch thread count and the sampling settings.
SAMPLING_COMMANDS = [["forecast"], ["backtest"], ["synth", "generate"], ["demo"], ["dashboard"]]
SAMPLING_FLAGS = ["--temperature", "--top-k", "--top-p"]
# Typer vendors its own Click: commands and options are told apart by behaviour, not class.
def _commands(command, path: list[str]):
    """(path, command) of every leaf command under ``command``."""
    if hasattr(command, "commands"):  # a group
        for name, sub in command.commands.items():
            yield from _commands(sub, path + [name])
    else:
        yield path, command


def _leaf_commands() -> list:
    return list(_commands(typer.main.get_command(app), []))


def _options(command) -> list:
    return [p for p in command.params if p.param_type_name == "option"]


def _flags(command) -> set[str]:
    return {flag for p in _options(command) for flag in p.opts + p.secondary_opts}


def _command(path: list[str]):
    found = dict((" ".join(p), c) for p, c in _leaf_commands())
    return found[" ".join(path)]


def test_version_prints_the_installed_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"forecaster {version('forecaster')}\n"


@pytest.mark.parametrize("path", SAMPLING_COMMANDS, ids=" ".join)
def test_every_sampling_command_takes_threads(path):
    assert "--threads" in _flags(_command(path)), path


@pytest.mark.parametrize("path, flag", [
    (path, flag) for path in SAMPLING_COMMANDS for flag in SAMPLING_FLAGS
], ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_every_sampling_command_takes_the_sampling_settings(path, flag):
    assert flag in _flags(_command(path)), (path, flag)


def test_one_flag_name_per_idea():
    for path, command in _leaf_commands():
        flags = _flags(command)
        assert "--minutes" not in flags, f"{path}: a time budget is --max-minutes"
        # --start meant the panel's first date in some commands and the first origin in others
        assert "--start" not in flags and "--end" not in flags, f"{path}: use --panel-start or --first/last-origin"
        if {"--progress", "--no-progress"} & flags:
            assert {"--progress", "--no-progress"} <= flags, path


def test_help_texts_say_what_their_command_does():
    for path, command in _leaf_commands():
        texts = [command.help or ""] + [p.help or "" for p in _options(command)]
        if path != ["data", "show"]:
            assert not any("Show the panel" in t for t in texts), path


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """``forecaster ARGS`` in a fresh process, stdin closed and stdout/stderr to pipes (no terminal anywhere)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TERM", "COLUMNS")}
    env.update(OMP_NUM_THREADS="1", **kwargs.pop("env", {}))
    return subprocess.run([sys.executable, "-m", "forecaster", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, env=env, timeout=300, **kwargs)


def test_help_and_completion_work_without_a_terminal():
    res = _run(["--help"])
    assert res.returncode == 0, res.stderr
    assert b"--install-completion" in res.stdout and b"--version" in res.stdout
    res = _run([], env={"_FORECASTER_COMPLETE": "complete_bash", "COMP_WORDS": "forecaster sy", "COMP_CWORD": "1"})
    assert res.returncode == 0 and res.stdout.split() == [b"synth"], res


def test_output_to_a_pipe_has_no_carriage_returns(tmp_path):
    # fetch and train draw progress bars by default; off a terminal they must not
    runs = [_run(["data", "fetch", "--data", "embedded", "--store", str(tmp_path / "store")]),
            _run(["train", "--data", "embedded", "--preset", "tiny", "--max-steps", "3", "--out", str(tmp_path / "run")])]
    for res in runs:
        assert res.returncode == 0, res.stderr.decode()
        assert b"\r" not in res.stdout and b"\r" not in res.stderr, res.args


def test_bad_sampling_settings_are_refused_before_any_work(tmp_path, capsys):
    """--top-k 0 on backtest, synth generate and dashboard: one line, exit 2, nothing written."""
    calls = [
        ["backtest", "--data", "embedded", "--out", str(tmp_path / "bt"), "--first-origin", "2018-01-01",
         "--last-origin", "2018-02-28", "--top-k", "0"],
        ["synth", "generate", "--run", str(tmp_path / "none"), "--rows", "5", "--out", str(tmp_path / "s.csv"),
         "--top-k", "0"],
        ["dashboard", "--runs", str(tmp_path), "--port", "1", "--top-k", "0"],
    ]
    for argv in calls:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "top_k must be >= 1" in err[0], (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
