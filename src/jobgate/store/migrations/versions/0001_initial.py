"""Initial schema: jobs, job_events, job_labels, gateways.

Revision ID: 0001
"""

from __future__ import annotations

from alembic import op

from jobgate.store.tables import gateways, job_events, job_labels, jobs

revision = "0001"
down_revision = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in (jobs, job_events, job_labels, gateways):
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in (gateways, job_labels, job_events, jobs):
        table.drop(bind, checkfirst=True)
