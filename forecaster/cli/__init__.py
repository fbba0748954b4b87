"""The ``forecaster`` command line.

Each sub-command group lives in its own module and registers itself on ``app``;
heavy imports (torch, deepspeed, dash) happen inside the commands so ``--help``
stays fast; ``--version`` prints the installed version and ``--install-completion``
sets up shell completion. A ``UserError`` becomes one line on stderr and a non-zero exit code;
``--debug`` shows the traceback instead. SIGTERM (``kill``, a scheduler, a
container stop) is handled like Ctrl-C: the command unwinds, so a half-written
output (a staging folder, a temporary file) is removed, and the exit code is 143.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator

import typer

from foundation.errors import UserError

app = typer.Typer(
    name="forecaster",
    help="Forecast US market and macro series with a generative transformer, and synthesize tabular data.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


def version() -> str:
    """The installed package's version (the source tree's ``forecaster.__version__`` when not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("forecaster")
    except PackageNotFoundError:
        from forecaster import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"forecaster {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
    _version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                  help="Print the version and exit."),
) -> None:
    _state["debug"] = debug


# Command modules, in the order they appear in --help. Each defines
# `register(app: typer.Typer) -> None`. A module that is not written yet is
# skipped; an import error inside one that exists is a real error and surfaces.
_COMMAND_MODULES = [
    "data_cmd",
    "tokenizer_cmd",
    "train_cmd",
    "forecast_cmd",
    "backtest_cmd",
    "calibrate_cmd",
    "synth_cmd",
    "dashboard_cmd",
    "demo_cmd",
]


def _register() -> None:
    import importlib
    import importlib.util

    for name in _COMMAND_MODULES:
        qualified = f"forecaster.cli.{name}"
        if importlib.util.find_spec(qualified) is None:
            continue
        importlib.import_module(qualified).register(app)


_register()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so every ``finally``/``except BaseException`` cleanup runs."""


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[dict]:
    """Turn SIGTERM into ``Terminated`` while a command runs (main thread only), then restore the handler.

    Yields a dict whose ``"terminated"`` says whether a SIGTERM arrived (Typer turns
    every ``KeyboardInterrupt`` into exit code 130, so the exception alone does not tell).
    """
    state = {"terminated": False}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def on_sigterm(signum, frame) -> None:
        # One SIGTERM unwinds the command; a repeated one must not interrupt the cleanup it started.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        state["terminated"] = True
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield state
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code (143 after SIGTERM)."""
    with _sigterm_unwinds() as state:
        try:
            code = _main(argv)
        except KeyboardInterrupt:  # raised outside the command (Typer's own code)
            code = 130
        if state["terminated"]:
            print("terminated", file=sys.stderr)
            return 143
        if code == 130:
            print("interrupted", file=sys.stderr)
        return code


def _main(argv: list[str] | None) -> int:
    try:
        # Without standalone mode Typer returns an exit code for Ctrl-C (130) and explicit
        # exits instead of calling sys.exit; commands themselves return None.
        # One program name however it is started (the script, `python -m forecaster`, torchrun): usage
        # lines say `forecaster`, and shell completion answers to _FORECASTER_COMPLETE.
        result = app(args=argv, prog_name="forecaster", standalone_mode=False)
        if isinstance(result, int) and not isinstance(result, bool):
            return result
    except UserError as exc:
        if _state["debug"]:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (main() tells them apart)
        return 130
    except typer.Exit as exc:  # raised by --help and explicit exits
        return exc.exit_code
    except Exception as exc:
        # Usage errors from the CLI library (Typer vendors Click; match by behaviour, not class).
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            return exc.exit_code
        if type(exc).__name__ == "Abort":
            print("aborted", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
