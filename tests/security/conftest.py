"""Attacks on a real `jobgate serve` (SQLite and PostgreSQL), as an API user would make
them. Every file an attack aims at is a canary in this test's temporary folder, never a
real system file: CI runs as root, so a test that named /etc/passwd would be testing on
the host itself."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.conftest import Server, database_url, gates, running_server

__all__ = ["database_url", "gates"]

CONFIG = """\
[destinations.local]
capacity = 8

[destinations.tiny]
capacity = 1
"""


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("serve"), database_url, CONFIG) as srv:
        yield srv


@dataclass
class Canary:
    """A file outside every run directory; an attack must leave it unread and unchanged."""

    path: Path
    text: str

    @property
    def folder(self) -> Path:
        return self.path.parent

    def intact(self) -> bool:
        return self.path.read_text() == self.text and self.path.stat().st_mtime_ns == self.mtime

    def __post_init__(self) -> None:
        self.path.write_text(self.text)
        os.chmod(self.path, 0o644)
        self.mtime = self.path.stat().st_mtime_ns


@pytest.fixture
def canary(tmp_path: Path) -> Canary:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return Canary(folder / "canary.txt", f"canary {os.urandom(8).hex()}\n")
