# Copyright 2026 The fireredasr-hf contributors. Licensed under the Apache License, Version 2.0.
"""The base of the `fireredasr-hf` subcommands. It lives apart from cli.py so that a command defined in its own
module (e.g. `demo.command`) subclasses it without importing the command line, which lists that command."""

import abc
import argparse


class Command(abc.ABC):
    """A subcommand: its name, help line, arguments and what it does (returning the process exit code)."""

    name: str
    help: str

    @abc.abstractmethod
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    @abc.abstractmethod
    def run(self, args: argparse.Namespace) -> int: ...


class CommandError(Exception):
    """A problem with the command's arguments or inputs, reported as one line and exit code 2."""


__all__ = ["Command", "CommandError"]
