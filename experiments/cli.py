"""What every command line here shares: bad input gets one line naming it and exit code 2."""

from __future__ import annotations

import signal
import sys

import typer
from typer.exceptions import TyperException


def new_app(**options) -> typer.Typer:
    """A typer app as every command here has it: plain help, since help texts write [default: …] and
    [arena] in brackets that rich markup would swallow."""
    return typer.Typer(add_completion=False, rich_markup_mode=None, **options)


def run_app(app: typer.Typer, args: list[str] | None = None) -> int:
    """Run a typer app; a usage error (an unknown flag, a value of the wrong type) becomes one line,
    `error: ...`, with exit code 2, instead of click's boxed usage message. Returns the exit code."""
    try:
        result = app(args=args, standalone_mode=False)
    except TyperException as err:  # typer's own click: unknown options, values of the wrong type
        message = err.format_message() if hasattr(err, "format_message") else str(err)
        typer.echo(f"error: {' '.join(message.split())}", err=True)
        return 2
    except typer.Abort:
        return 130
    return result if isinstance(result, int) else 0


def main(app: typer.Typer) -> None:
    # A shell starts a background job (`cmd &`) with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: a run started so could not be stopped the way it says it stops (issue 14).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(run_app(app))
