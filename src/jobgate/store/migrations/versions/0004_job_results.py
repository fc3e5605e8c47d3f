"""Results of job types: one row per job, what its type's parser read (JSON), or why it
could not.

Frozen once released, like 0001: written out here, never from the live tables.py.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "job_results",
        sa.Column("job_id", sa.String(26), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("job_type", sa.String(200), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_job_results_type", "job_results", ["job_type", "owner", "job_id"])


def downgrade() -> None:
    op.drop_index("ix_job_results_type", "job_results")
    op.drop_table("job_results")
