"""Finished jobs by the time they finished, for retention's hourly sweep: without it the
sweep read every final job in id order to find none due (1,000,000 jobs: a scan inside a
write transaction each hour). Partial: a job not finished has no entry.

Frozen once released, like 0001: written out here, never from the live tables.py.

Revision ID: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

_FINISHED = sa.text("finished_at IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_jobs_finished_at",
        "jobs",
        ["finished_at"],
        sqlite_where=_FINISHED,
        postgresql_where=_FINISHED,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_finished_at", "jobs")
