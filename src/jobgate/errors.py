"""One exception tree: every error jobgate raises is a JobgateError.

Fatal errors will not go away by retrying (bad input, unknown job, a scheduler command
that is not installed); transient ones may (a scheduler that did not answer, an SSH
connection that dropped, a store that is locked or down). Drivers' exceptions are
translated into these at the boundary: the store's in `store/`, the transports' in
`transports/`; each door maps the tree once (problem+json in the API, one line in the CLI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class JobgateError(Exception):
    """Base of every error jobgate raises."""

    transient = False


class FatalError(JobgateError):
    """Retrying the same call will fail the same way."""


class TransientError(JobgateError):
    """The same call may succeed later: back off and retry."""

    transient = True


class SpecError(FatalError):
    """A job spec (or a request) is invalid; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class ConfigError(FatalError):
    """The configuration is invalid: the gateway refuses to start (never a request's 4xx)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class NotFoundError(FatalError):
    """No such job (or destination)."""


class ConflictError(FatalError):
    """The request conflicts with the stored state (e.g. a reused idempotency key)."""


class InvalidTransition(FatalError):
    """A state change that did not take: the job was not in a state it may leave that way."""

    def __init__(self, job_id: str, target: str, current: str | None) -> None:
        self.job_id, self.target, self.current = job_id, target, current
        super().__init__(f"job {job_id}: cannot move from {current or 'unknown'} to {target}")


class SubmitError(FatalError):
    """The scheduler refused the job; the message is the scheduler's own."""


class CommandNotFound(FatalError):
    """A scheduler command (sbatch, qsub, ...) is not installed where it must run."""


class SchedulerUnavailable(TransientError):
    """The scheduler or the transport did not answer; jobs keep their state."""


class StoreUnavailable(TransientError):
    """The store is locked, read-only or unreachable: nothing was written; try again."""


def spec_error(exc: ValidationError) -> SpecError:
    """pydantic's first error as one SpecError naming the field."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "spec"
    message = str(err["msg"]).removeprefix("Value error, ")
    if ":" in message and err["type"] == "value_error" and field == "resources":
        alias, _, rest = message.partition(":")  # an alias parse error: name the alias
        field, message = f"resources.{alias}", rest.strip()
    return SpecError(field, message)
