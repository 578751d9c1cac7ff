"""The ``stemstream`` command: one entry point dispatching to each package's subcommands."""
from __future__ import annotations

import argparse
import signal
import sys


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
    raise KeyboardInterrupt("SIGTERM")


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; Ctrl-C or SIGTERM at any moment (imports included) stops it without a
    traceback: status 130 (Ctrl-C) or 143 (SIGTERM). Commands that hold work print their own summary.

    A subcommand may declare the exceptions that report the user's mistake (bad arguments, data or
    checkpoints) with ``set_defaults(user_errors=(...))``: one of them ends the command with
    ``stemstream COMMAND: error: MESSAGE`` on stderr and status 2, instead of a traceback."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        args = build_parser().parse_args(argv)
        try:
            return int(args.func(args) or 0)
        except getattr(args, "user_errors", ()) as exc:
            print(f"stemstream {args.command}: error: {exc}", file=sys.stderr)
            return 2
    except KeyboardInterrupt as exc:
        sigterm = str(exc) == "SIGTERM"
        print(f"stopped by {'SIGTERM' if sigterm else 'Ctrl-C'}", file=sys.stderr)
        return 143 if sigterm else 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
