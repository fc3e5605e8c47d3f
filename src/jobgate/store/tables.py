"""Table definitions (SQLAlchemy Core). Times are float epoch seconds: portable and cheap."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("name", String(200)),
    Column("owner", String(200), nullable=False),
    Column("destination", String(100), nullable=False),
    Column("state", String(16), nullable=False),
    Column("native_id", String(100)),
    Column("exit_code", Integer),
    Column("reason", Text),
    # Why it ended, for programs (states.ReasonCode), and the scheduler's own word for it;
    # why the scheduler keeps it waiting, from the last poll (migration 0006).
    Column("reason_code", String(32)),
    Column("native_state", String(32)),
    Column("pending_reason", String(200)),
    # Retries: the attempt it is on (1 first), and when it may be admitted again.
    Column("attempt", Integer, nullable=False, server_default="1"),
    Column("not_before", Float),
    Column("host", String(255)),
    Column("run_dir", Text),
    Column("spec", Text, nullable=False),  # JSON of the JobSpec as submitted
    # JSON of the effective Resources (the spec's with the destination's defaults), written
    # at submit (migration 0002); NULL for jobs stored before.
    Column("resources", Text),
    Column("labels", Text, nullable=False, server_default="{}"),
    Column("idempotency_key", String(200)),
    Column("callback_url", Text),
    # 'cancel' or 'timeout' once the gateway decided to stop the job: survives restarts,
    # so a job killed for either reason is never mistaken for a failure.
    Column("stop_reason", String(16)),
    Column("backend_data", Text, nullable=False, server_default="{}"),
    # The supervisor (gateways.id) watching this job; another adopts it once that one is dead.
    Column("gateway_id", String(26)),
    Column("created_at", Float, nullable=False),
    Column("queued_at", Float),
    Column("submitted_at", Float),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency_key"),
)
# A destination's jobs of a state, in id order (migration 0009): listened to in chunks.
Index("ix_jobs_destination_state_id", jobs.c.destination, jobs.c.state, jobs.c.id)
Index("ix_jobs_state", jobs.c.state)
# Finished jobs by end time, for retention (migration 0010); unfinished ones have no entry.
_FINISHED = jobs.c.finished_at.isnot(None)
Index("ix_jobs_finished_at", jobs.c.finished_at, sqlite_where=_FINISHED, postgresql_where=_FINISHED)
# One user's jobs newest first, and of one state (migration 0006): lists never sort.
Index("ix_jobs_owner_id", jobs.c.owner, jobs.c.id)
Index("ix_jobs_owner_state_id", jobs.c.owner, jobs.c.state, jobs.c.id)

job_events = Table(
    "job_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(26), nullable=False),
    Column("time", Float, nullable=False),
    Column("type", String(40), nullable=False),
    Column("message", Text, nullable=False, server_default=""),
    Column("data", Text, nullable=False, server_default="{}"),
)
Index("ix_job_events_job_id_seq", job_events.c.job_id, job_events.c.seq)

# Arrays task by task (migration 0007): one row per task, as its job's poll sees it.
job_tasks = Table(
    "job_tasks",
    metadata,
    Column("job_id", String(26), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("exit_code", Integer),
    Column("reason_code", String(32)),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("updated_at", Float, nullable=False),
)

job_labels = Table(
    "job_labels",
    metadata,
    Column("job_id", String(26), primary_key=True),
    Column("key", String(100), primary_key=True),
    Column("value", String(500), nullable=False),
)
Index("ix_job_labels_key_value_job", job_labels.c.key, job_labels.c.value, job_labels.c.job_id)

gateways = Table(
    "gateways",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("admin", Boolean, nullable=False, default=False),
    Column("callback_secret", String(100), nullable=False),  # signs this user's callbacks
    Column("created_at", Float, nullable=False),
)

# Bearer tokens, stored only as SHA-256 hashes (tokens are 256 random bits: no salt needed).
tokens = Table(
    "tokens",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("user", String(200), nullable=False),
    Column("label", String(200), nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    # Public: tokens are listed and revoked by it (migration 0003). Random, not the hash.
    Column("id", String(16), nullable=False),
    Column("expires_at", Float),  # NULL: never
    Column("revoked_at", Float),  # NULL: not revoked
)
Index("ix_tokens_user", tokens.c.user)
Index("ix_tokens_id", tokens.c.id, unique=True)

# Counters other processes watch to drop what they cached (migration 0003): `accounts`
# moves with every revocation (jobgate.service.tokens).
markers = Table(
    "markers",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", Integer, nullable=False),
)

# The callback outbox: one row per state change of a job with a callback URL, written in
# the same transaction as the change; delivered in order per job, with retries.
callbacks = Table(
    "callbacks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(26), nullable=False),
    Column("event_seq", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column(
        "state", String(12), nullable=False, server_default="pending"
    ),  # pending|delivered|failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", Text),
    Column("last_status", Integer),
    Column("delivered_at", Float),
    Column("created_at", Float, nullable=False),
)
Index("ix_callbacks_state_next", callbacks.c.state, callbacks.c.next_attempt_at)
Index("ix_callbacks_job", callbacks.c.job_id, callbacks.c.id)

# What a job type's parser read from a finished job (migration 0004): one row per job,
# `data` a JSON object (with the job's @var values merged in), `error` if the parser failed.
job_results = Table(
    "job_results",
    metadata,
    Column("job_id", String(26), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("job_type", String(200), nullable=False),
    Column("data", Text, nullable=False),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
)
# Keyset pages of one type's results, newest first (job ids sort by creation time).
Index("ix_job_results_type", job_results.c.job_type, job_results.c.owner, job_results.c.job_id)

# Drop-box queues (migration 0005): one row per job file claimed from a queue's pending/,
# unique on (queue, key, version) so that any number of gateways claim each file once.
queue_items = Table(
    "queue_items",
    metadata,
    Column("queue", String(100), primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("version", String(200), primary_key=True),
    Column("job_id", String(26), nullable=False),  # decided at the claim
    Column("state", String(12), nullable=False),  # claimed | submitted | completed
    Column("claimed_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_queue_items_state", queue_items.c.queue, queue_items.c.state)
