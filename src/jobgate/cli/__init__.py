"""The `jobgate` command."""

from jobgate.cli.main import main

__all__ = ["main"]
