"""The SQL store (SQLAlchemy Core): SQLite by default, PostgreSQL to scale out."""

from jobgate.store.store import Store, Transition

__all__ = ["Store", "Transition"]
