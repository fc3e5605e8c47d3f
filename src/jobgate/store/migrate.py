"""Alembic migrations, run on open when the schema is behind (a cheap version check first)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect, text

HEAD = "0001"
_SCRIPTS = Path(__file__).with_name("migrations")


def upgrade(engine: Engine) -> None:
    if _current(engine) == HEAD:
        return
    from alembic import command  # imported lazily: it costs ~100 ms of start-up
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return None if row is None else str(row[0])
