"""The ``stemstream`` command: one entry point dispatching to each package's subcommands."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from latency import cli as latency_cli
    from model import cli as model_cli
    from plugin_host import cli as host_cli
    from rt import cli as rt_cli

    parser = argparse.ArgumentParser(prog="stemstream", description="Live, low-latency music stem isolation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (host_cli, model_cli, rt_cli, latency_cli):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
