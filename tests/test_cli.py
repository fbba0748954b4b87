"""The command line: every command has --help, and the entry point is wired."""
from __future__ import annotations

import typer

from forecaster.cli import app, main


def _walk(command, path: list[str]):
    yield path
    if hasattr(command, "commands"):  # a group
        for name, sub in command.commands.items():
            yield from _walk(sub, path + [name])


def test_every_command_has_help(capsys):
    root = typer.main.get_command(app)
    paths = list(_walk(root, []))
    assert ["data", "show"] in paths and ["data", "fetch"] in paths and ["data", "export"] in paths
    for path in paths:
        capsys.readouterr()
        assert main(path + ["--help"]) == 0, path
        out = capsys.readouterr().out
        assert "Usage" in out and "--help" in out, path


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["nonsense"]) != 0


def test_ctrl_c_inside_a_command_exits_130(capsys):
    import typer as _typer

    from forecaster.cli import main as _main

    sub = _typer.Typer()

    @sub.command()
    def boom() -> None:
        raise KeyboardInterrupt

    app.add_typer(sub, name="testing-interrupt")
    try:
        assert _main(["testing-interrupt", "boom"]) == 130
        assert "interrupted" in capsys.readouterr().err
    finally:
        app.registered_groups[:] = [g for g in app.registered_groups if g.name != "testing-interrupt"]
