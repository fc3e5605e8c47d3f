"""Initial schema: jobs, job_events, job_labels, gateways, users, tokens, callbacks.

Frozen: written out as it was released, never from the live tables.py (a later change
to the tables is a new migration, and databases made by this one still upgrade).

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    _jobs()
    _events_and_labels()
    _accounts_and_gateways()
    _callbacks()


def _jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("destination", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("native_id", sa.String(100)),
        sa.Column("exit_code", sa.Integer),
        sa.Column("reason", sa.Text),
        sa.Column("host", sa.String(255)),
        sa.Column("run_dir", sa.Text),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("labels", sa.Text, nullable=False, server_default="{}"),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("callback_url", sa.Text),
        sa.Column("stop_reason", sa.String(16)),
        sa.Column("backend_data", sa.Text, nullable=False, server_default="{}"),
        sa.Column("gateway_id", sa.String(26)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("queued_at", sa.Float),
        sa.Column("submitted_at", sa.Float),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency_key"),
    )
    op.create_index("ix_jobs_destination_state", "jobs", ["destination", "state"])
    op.create_index("ix_jobs_state", "jobs", ["state"])


def _events_and_labels() -> None:
    op.create_table(
        "job_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(26), nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_job_events_job_id_seq", "job_events", ["job_id", "seq"])
    op.create_table(
        "job_labels",
        sa.Column("job_id", sa.String(26), primary_key=True),
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.String(500), nullable=False),
    )
    op.create_index("ix_job_labels_key_value", "job_labels", ["key", "value"])


def _accounts_and_gateways() -> None:
    op.create_table(
        "gateways",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("callback_secret", sa.String(100), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("label", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_tokens_user", "tokens", ["user"])


def _callbacks() -> None:
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(26), nullable=False),
        sa.Column("event_seq", sa.Integer, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("state", sa.String(12), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("last_status", sa.Integer),
        sa.Column("delivered_at", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_callbacks_state_next", "callbacks", ["state", "next_attempt_at"])
    op.create_index("ix_callbacks_job", "callbacks", ["job_id", "id"])


def downgrade() -> None:
    for table in ("callbacks", "tokens", "users", "gateways", "job_labels", "job_events", "jobs"):
        op.drop_table(table)
