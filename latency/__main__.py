"""``python -m latency profile ...``: the latency subcommands without the rest of stemstream.

For machines (a lent GPU) where only torch, numpy and this source tree are present.
"""
from __future__ import annotations

import argparse
import sys

from stemstream_cli import run_command

from . import cli


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m latency", description="stemstream latency tools")
    cli.register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one latency subcommand with ``stemstream``'s own handling of stop signals and user errors."""
    return run_command(_build_parser, argv, prog="python -m latency")


if __name__ == "__main__":
    sys.exit(main())
