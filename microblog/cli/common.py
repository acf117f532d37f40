"""What every command shares: how it is declared, and how it reports a problem."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from microblog import __version__
from microblog.config import Settings

Command = Callable[[Settings, argparse.Namespace], int]


class CommandError(RuntimeError):
    """A problem the operator can fix; the message says how."""


def add_command(
    commands: argparse._SubParsersAction, name: str, handler: Command, help: str
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help, description=help)
    parser.add_argument("--version", action="version", version=f"microblog {__version__}")
    parser.set_defaults(handler=handler, command=name)
    return parser


T = TypeVar("T")


def argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A setting's parser (microblog/parsers.py) as an argparse type: one rule for both ways in."""

    def parse_argument(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse_argument
