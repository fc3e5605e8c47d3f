"""What the scheduler says, kept: a machine-readable reason code and the native state
beside the reason text, the scheduler's pending reason; and retries: the attempt a job
is on, and the time before which it waits to be tried again.

Frozen once released, like 0001: written out here, never from the live tables.py.

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("reason_code", sa.String(32)))
        batch.add_column(sa.Column("native_state", sa.String(32)))
        batch.add_column(sa.Column("pending_reason", sa.String(200)))
        batch.add_column(sa.Column("attempt", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("not_before", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("not_before")
        batch.drop_column("attempt")
        batch.drop_column("pending_reason")
        batch.drop_column("native_state")
        batch.drop_column("reason_code")
