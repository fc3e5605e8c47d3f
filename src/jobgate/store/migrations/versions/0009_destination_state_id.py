"""A destination's jobs of one state in id order: the supervisor listens to its running
jobs a chunk at a time (keyset, `id > :after`), which without the id in the index read
and sorted every running job of the destination for each chunk (100,000 running jobs:
200 chunks a pass). The (destination, state) index is its prefix: dropped.

Frozen once released, like 0001: written out here, never from the live tables.py.

Revision ID: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_index("ix_jobs_destination_state_id", "jobs", ["destination", "state", "id"])
    op.drop_index("ix_jobs_destination_state", "jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_destination_state", "jobs", ["destination", "state"])
    op.drop_index("ix_jobs_destination_state_id", "jobs")
