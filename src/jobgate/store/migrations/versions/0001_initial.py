"""Initial schema: jobs, job_events, job_labels, gateways, users, tokens, callbacks.

Revision ID: 0001
"""

from __future__ import annotations

from alembic import op

from jobgate.store.tables import callbacks, gateways, job_events, job_labels, jobs, tokens, users

revision = "0001"
down_revision = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in (jobs, job_events, job_labels, gateways, users, tokens, callbacks):
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in (callbacks, tokens, users, gateways, job_labels, job_events, jobs):
        table.drop(bind, checkfirst=True)
