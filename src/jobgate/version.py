"""The package version: here, imported by nothing else, so any layer may read it."""

__version__ = "0.1.0"
