"""asyncssh, imported without the DeprecationWarning that cryptography (>= 48) raises for
the DSA names asyncssh itself imports: it would reach every user of an SSH destination,
on every command, about code that is not theirs. Only this import is quieted."""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    import asyncssh

__all__ = ["asyncssh"]
