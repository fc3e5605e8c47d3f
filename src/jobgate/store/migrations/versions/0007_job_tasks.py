"""Arrays task by task: each task of an array job is a row with its own state, exit
code and times, updated from the same batched poll as its job.

Frozen once released, like 0001: written out here, never from the live tables.py.

Revision ID: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "job_tasks",
        sa.Column("job_id", sa.String(26), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("reason_code", sa.String(32)),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_tasks")
