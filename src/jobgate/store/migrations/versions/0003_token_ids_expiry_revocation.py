"""Tokens get a public id (to list and revoke them by), an optional expiry and a
revocation time; `markers` holds counters that other processes watch, among them
`accounts`, moved by every revocation (so a cached token is re-checked at once).

Frozen once released, like 0001: written out here, never from the live tables.py.

Revision ID: 0003
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("id", sa.String(16)))
        batch.add_column(sa.Column("expires_at", sa.Float))
        batch.add_column(sa.Column("revoked_at", sa.Float))
    conn = op.get_bind()
    table = sa.table("tokens", sa.column("hash", sa.String), sa.column("id", sa.String))
    for (digest,) in conn.execute(sa.select(table.c.hash)).all():
        # A random id, as new tokens get: not derived from the hash, so it tells nothing.
        conn.execute(table.update().where(table.c.hash == digest).values(id=secrets.token_hex(8)))
    with op.batch_alter_table("tokens") as batch:
        batch.alter_column("id", existing_type=sa.String(16), nullable=False)
        batch.create_index("ix_tokens_id", ["id"], unique=True)
    markers = op.create_table(
        "markers",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
    )
    op.bulk_insert(markers, [{"name": "accounts", "value": 0}])


def downgrade() -> None:
    op.drop_table("markers")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_id")
        batch.drop_column("revoked_at")
        batch.drop_column("expires_at")
        batch.drop_column("id")
