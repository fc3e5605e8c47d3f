"""The SQL store (SQLAlchemy Core): SQLite by default, PostgreSQL to scale out."""

from jobgate.store.aio import AsyncStore
from jobgate.store.changes import Transition
from jobgate.store.store import Store

__all__ = ["AsyncStore", "Store", "Transition"]
