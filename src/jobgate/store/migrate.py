"""Alembic migrations, run when a gateway opens its store (jobgate.runtime), and only when
the schema is behind (a cheap version check first). 0001 is frozen; each change to
tables.py comes with the next migration, and tests/integration/test_store.py checks that
the migrations end where tables.py is."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

HEAD = "0010"
_SCRIPTS = Path(__file__).with_name("migrations")


def upgrade(engine: Engine, target: str = "head") -> None:
    if target == "head" and current(engine) == HEAD:
        return
    from alembic import command  # imported lazily: it costs ~100 ms of start-up

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    return cfg


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return None if row is None else str(row[0])
