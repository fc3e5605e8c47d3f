"""Drop-box queues: the job files claimed from each queue, once per (queue, key, version).

Frozen once released, like 0001: written out here, never from the live tables.py.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "queue_items",
        sa.Column("queue", sa.String(100), primary_key=True),
        sa.Column("key", sa.String(500), primary_key=True),
        sa.Column("version", sa.String(200), primary_key=True),
        sa.Column("job_id", sa.String(26), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("claimed_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_queue_items_state", "queue_items", ["queue", "state"])


def downgrade() -> None:
    op.drop_index("ix_queue_items_state", "queue_items")
    op.drop_table("queue_items")
