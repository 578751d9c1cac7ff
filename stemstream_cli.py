"""The ``stemstream`` command: one entry point dispatching to each package's subcommands.

The dispatch itself (:func:`run_command`) is shared with ``python -m latency``: stop signals and
the errors that are the user's to fix are handled here, once, for every subcommand.
"""
from __future__ import annotations

import argparse
import signal
import sys
from typing import Callable

_STOP = {"sigterm": False}  # set when SIGTERM arrived during the running command (handled like Ctrl-C)


def build_parser() -> argparse.ArgumentParser:
    from latency import cli as latency_cli
    from model.training import cli as training_cli
    from plugin_host import cli as host_cli
    from rt import cli as rt_cli

    parser = argparse.ArgumentParser(prog="stemstream", description="Live, low-latency music stem isolation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (host_cli, training_cli, rt_cli, latency_cli):
        module.register(sub)
    return parser


def _on_sigterm(signum: int, frame: object) -> None:
    _STOP["sigterm"] = True
    raise KeyboardInterrupt("SIGTERM")


def stopped_by() -> tuple[str, int]:
    """What stopped the running command, for its own summary: ``("SIGTERM", 143)`` once SIGTERM
    arrived, else ``("Ctrl-C", 130)``. Right also where the ``KeyboardInterrupt`` itself was caught
    deeper down (a batch that records the input it was on and returns)."""
    return ("SIGTERM", 143) if _STOP["sigterm"] else ("Ctrl-C", 130)


def run_command(build: Callable[[], argparse.ArgumentParser], argv: list[str] | None = None,
                prog: str = "stemstream") -> int:
    """Parse ``argv`` with the parser ``build()`` returns and run the chosen subcommand
    (``args.func(args)``, its return value the exit status).

    Ctrl-C or SIGTERM at any moment (imports included) stops it without a traceback: status 130
    (Ctrl-C) or 143 (SIGTERM). Commands that hold work catch the ``KeyboardInterrupt`` themselves,
    print their own summary and return :func:`stopped_by`'s status.

    A subcommand declares the exceptions that report the user's mistake (bad arguments, data,
    devices or checkpoints) with ``set_defaults(user_errors=(...))``: one of them ends the command
    with ``PROG COMMAND: error: MESSAGE`` on stderr and status 2, instead of a traceback."""
    _STOP["sigterm"] = False
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        args = build().parse_args(argv)
        try:
            return int(args.func(args) or 0)
        except getattr(args, "user_errors", ()) as exc:
            print(f"{prog} {args.command}: error: {exc}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        how, status = stopped_by()
        print(f"stopped by {how}", file=sys.stderr)
        return status
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Run one ``stemstream`` subcommand (see :func:`run_command`)."""
    return run_command(build_parser, argv)


if __name__ == "__main__":
    # ``python -m stemstream_cli``: run the importable module, whose stop state the commands read
    from stemstream_cli import main as _main

    sys.exit(_main())
