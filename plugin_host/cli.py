"""Subcommands of the ``plugin_host`` package."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to ``stemstream``."""
