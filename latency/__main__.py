"""``python -m latency profile ...``: the latency subcommands without the rest of stemstream.

For machines (a lent GPU) where only torch, numpy and this source tree are present.
"""
from __future__ import annotations

import argparse
import sys

from . import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m latency", description="stemstream latency tools")
    cli.register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
