"""The one dispatcher of every subcommand (``stemstream_cli.run_command``): declared user errors
become one line and status 2, other errors stay tracebacks, and stop signals end a command
with 130 (Ctrl-C) or 143 (SIGTERM), which commands holding work read with ``stopped_by``."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Callable

import pytest

from stemstream_cli import run_command, stopped_by


def _parser(func: Callable[[argparse.Namespace], int], user_errors: tuple = ()) -> Callable[[], argparse.ArgumentParser]:
    def build() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="stemstream")
        sub = parser.add_subparsers(dest="command", required=True)
        sub.add_parser("cmd").set_defaults(func=func, user_errors=user_errors)
        return parser

    return build


def _raise(exc: BaseException) -> Callable[[argparse.Namespace], int]:
    def func(args: argparse.Namespace) -> int:
        raise exc

    return func


def _sigterm_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the handler raises here, at the latest


def test_a_declared_error_is_one_line_with_status_2(capsys):
    assert run_command(_parser(_raise(ValueError("--x must be 1 or more")), (ValueError,)), ["cmd"]) == 2
    assert capsys.readouterr().err == "stemstream cmd: error: --x must be 1 or more\n"
    assert run_command(_parser(_raise(ValueError("bad")), (ValueError,)), ["cmd"], prog="python -m latency") == 2
    assert capsys.readouterr().err == "python -m latency cmd: error: bad\n"


def test_an_undeclared_error_keeps_its_traceback():
    with pytest.raises(RuntimeError, match="a bug"):
        run_command(_parser(_raise(RuntimeError("a bug")), (ValueError,)), ["cmd"])


def test_ctrl_c_and_sigterm_stop_a_command_with_130_and_143(capsys):
    assert run_command(_parser(_raise(KeyboardInterrupt())), ["cmd"]) == 130
    assert capsys.readouterr().err == "stopped by Ctrl-C\n"
    previous = signal.getsignal(signal.SIGTERM)
    assert run_command(_parser(lambda args: _sigterm_self()), ["cmd"]) == 143
    assert capsys.readouterr().err == "stopped by SIGTERM\n"
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is put back


def test_a_command_that_catches_the_stop_prints_its_own_summary(capsys):
    def command(args: argparse.Namespace) -> int:
        try:
            _sigterm_self()
        except KeyboardInterrupt:
            pass  # as a batch does: it records the input it was on and returns its results
        how, status = stopped_by()
        print(f"stopped by {how}: 1 input done", file=sys.stderr)
        return status

    assert run_command(_parser(command), ["cmd"]) == 143
    assert capsys.readouterr().err == "stopped by SIGTERM: 1 input done\n"
    assert run_command(_parser(lambda args: stopped_by()[1]), ["cmd"]) == 130  # a new command starts unstopped
