"""Raw scheduler directives, by allow-list.

`resources.directives` are the escape hatch for scheduler options jobgate has no field
for. Each one is read the way the scheduler's own parser (getopt) reads it - a long
option by any unambiguous prefix, `--opt=value` or `--opt value`, a short one with its
value attached (`-a0-3`) or apart - and judged by the option's full name: allowed on every
destination, allowed where the destination says so (`allowed_directives`), or refused.
Options jobgate sets itself are refused everywhere: jobgate finds jobs by name, reads
their files, sets their environment and enforces the destination's limits through them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from jobgate.errors import SpecError

NONE, REQUIRED, OPTIONAL = "", "=", "[=]"  # how an option takes its value, as in `man`
# A directive line is a comment to bash but parsed by sbatch/qsub: no quotes, spaces, "#",
# "$" or backslashes for them to read differently from what was checked.
_PLAIN = r"[A-Za-z0-9_.,:=@%+/*\[\]-]+"
_TOKEN = re.compile(r"(-[A-Za-z]|--[a-z][a-z-]*)(=|\[=\])?")


@dataclass(frozen=True)
class Option:
    name: str  # the full spelling: "--mail-type", or "-m" for an option with no long name
    arg: str  # NONE, REQUIRED or OPTIONAL


class OptionTable:
    """A command's options as its getopt sees them, from a table written as the manual
    writes them: `-A --account=` (a letter and its long name, taking a value),
    `--nice[=]` (an optional value), `-H --hold` (none), `-l=` (a letter alone)."""

    def __init__(self, command: str, table: str, aliases: Mapping[str, str] | None = None):
        self.command = command
        self.long: dict[str, Option] = {}
        self.short: dict[str, Option] = {}
        letter: str | None = None
        for token in table.split():
            m = _TOKEN.fullmatch(token)
            if not m:
                raise ValueError(f"bad option table entry {token!r}")
            name, arg = m.group(1), m.group(2) or NONE
            if name.startswith("--"):
                self.long[name[2:]] = option = Option(name, arg)
                if letter:
                    self.short[letter] = option
                letter = None
            else:
                if letter:  # the letter before had no long name
                    self.short[letter] = Option(f"-{letter}", NONE)
                letter = name[1]
                if arg:
                    self.short[letter], letter = Option(name, arg), None
        if letter:
            self.short[letter] = Option(f"-{letter}", NONE)
        for alias, name in (aliases or {}).items():
            self.long[alias] = self.long[name]

    @staticmethod
    def names(text: str) -> frozenset[str]:
        """Option names, one per word."""
        return frozenset(text.split())

    def find(self, written: str) -> Option:
        """The option a word names: a letter, or a long name or unambiguous prefix of one
        (getopt_long's rule: an exact name wins; aliases of one option are one option)."""
        if not written.startswith("--"):
            option = self.short.get(written[1:2]) if len(written) == 2 else None
            if option is None:
                raise ValueError(f"{written}: {self.command} has no such option")
            return option
        name = written[2:]
        if name in self.long:
            return self.long[name]
        matches = {o.name: o for n, o in self.long.items() if n.startswith(name)}
        if len(matches) == 1:
            return next(iter(matches.values()))
        if not matches:
            raise ValueError(f"{written}: {self.command} has no such option")
        raise ValueError(
            f"{written} is ambiguous ({', '.join(sorted(matches))}): write the option in full"
        )

    def read(self, text: str) -> tuple[str, Option, str | None]:
        """(the option as written, the option, its value) of one directive, refusing
        (ValueError) what is not exactly one option with a plain value."""
        if "#" in text:
            raise ValueError(
                f"{text!r}: give one option without a directive prefix "
                "('#SBATCH'/'#PBS' lines are written by jobgate)"
            )
        if not re.fullmatch(rf"-{_PLAIN}(?: {_PLAIN})?", text):
            raise ValueError(
                f"{text!r} is not one option with a plain value; "
                "quotes, spaces and shell characters are refused"
            )
        word, _, apart = text.partition(" ")
        if word.startswith("--"):
            written, eq, attached = word.partition("=")
            value = attached if eq else None
        else:
            written, value = word[:2], word[2:] or None
        if not re.fullmatch(r"-[A-Za-z]|--[a-z][a-z-]*", written):
            raise ValueError(f"{text!r} does not start with an option")
        option = self.find(written)
        return written, option, _value(written, option, value, apart or None)


def _value(written: str, option: Option, attached: str | None, apart: str | None) -> str | None:
    """The option's value, as getopt would take it; refused where that would be a
    surprise: a second option hiding in the value, a value getopt would not take."""
    sep = "=" if written.startswith("--") else ""
    if attached is not None and apart is not None:
        raise ValueError(f"{written}: one option per directive")
    if option.arg == NONE and (attached or apart):
        raise ValueError(f"{written} takes no value (one option per directive)")
    if option.arg == OPTIONAL and apart is not None:
        raise ValueError(f"{written} takes its value attached: {written}{sep}{apart}")
    if option.arg == REQUIRED:
        if apart is not None and apart.startswith("-"):
            raise ValueError(f"{written}: attach a value that starts with '-' ({written}{sep}...)")
        attached = attached if attached is not None else apart
        if not attached:
            raise ValueError(f"{written} needs a value")
    return attached


@dataclass(frozen=True)
class DirectivePolicy:
    """Which of a scheduler's options users may give, and why the others are refused."""

    table: OptionTable
    allowed: frozenset[str]  # full names every destination allows
    reserved: Mapping[str, str]  # full name -> what to use instead; never allowed
    # An option whose value is a `key=value,...` list: the keys jobgate sets (PBS -l, -W).
    reserved_keys: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # An option whose value must match a pattern, and what it may be.
    values: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def extend(self, names: Iterable[str]) -> frozenset[str]:
        """A destination's `allowed_directives` as full names; ValueError for an option the
        command lacks or one jobgate sets itself."""
        out = set(self.allowed)
        for name in names:
            option = self.table.find(name)
            if option.name != name and name.startswith("--"):
                raise ValueError(f"{name}: write the option in full ({option.name})")
            if option.name in self.reserved:
                raise ValueError(f"{name} is set by jobgate itself and cannot be allowed")
            out.add(option.name)
        return frozenset(out)

    def check(self, directives: list[str], allowed: frozenset[str], destination: str) -> None:
        """SpecError naming `resources.directives.<i>` for the first directive refused."""
        for i, text in enumerate(directives):
            try:
                self._check_one(text, allowed, destination)
            except ValueError as exc:
                raise SpecError(f"resources.directives.{i}", str(exc)) from None

    def _check_one(self, text: str, allowed: frozenset[str], destination: str) -> None:
        written, option, value = self.table.read(text)
        shown = written if written == option.name else f"{written} ({option.name})"
        if option.name in self.reserved:
            raise ValueError(f"{shown} is set by jobgate itself: {self.reserved[option.name]}")
        if option.name not in allowed:
            raise ValueError(
                f"{shown} is not allowed on destination {destination!r} "
                "(an operator may allow it with allowed_directives)"
            )
        if option.name in self.values and value is not None:
            pattern, what = self.values[option.name]
            if not re.fullmatch(pattern, value):
                raise ValueError(f"{shown}: {what}")
        for key in _keys(value) if option.name in self.reserved_keys else ():
            why = self.reserved_keys[option.name].get(key)
            if why:
                raise ValueError(f"{option.name} {key} is set by jobgate itself: {why}")


def _keys(value: str | None) -> list[str]:
    """The keys of a `key=value,key2=value2` list (PBS's -l resources, -W attributes)."""
    return [part.split("=", 1)[0] for part in (value or "").split(",")]
