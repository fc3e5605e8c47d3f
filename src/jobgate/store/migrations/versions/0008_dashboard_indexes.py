"""Indexes for one user's jobs, newest first (the dashboard's and the API's lists): by
owner, by owner and state, and labels with their job ids in order. Without them a user's
first page sorted all their jobs (SQLite chose the owner/idempotency-key index, ~130 ms
over 100,000 jobs; 2 ms with them: docs/benchmarks.md). The (key, value) label index is
a prefix of the new one: dropped.

Frozen once released, like 0001: written out here, never from the live tables.py.

Revision ID: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_index("ix_jobs_owner_id", "jobs", ["owner", "id"])
    op.create_index("ix_jobs_owner_state_id", "jobs", ["owner", "state", "id"])
    op.create_index("ix_job_labels_key_value_job", "job_labels", ["key", "value", "job_id"])
    op.drop_index("ix_job_labels_key_value", "job_labels")


def downgrade() -> None:
    op.create_index("ix_job_labels_key_value", "job_labels", ["key", "value"])
    op.drop_index("ix_job_labels_key_value_job", "job_labels")
    op.drop_index("ix_jobs_owner_state_id", "jobs")
    op.drop_index("ix_jobs_owner_id", "jobs")
