"""One exception tree: every error jobgate raises is a JobgateError.

Fatal errors will not go away by retrying (bad input, unknown job); transient
ones may (a scheduler that did not answer, an SSH connection that dropped).
Drivers' exceptions are translated into these at the boundary.
"""

from __future__ import annotations


class JobgateError(Exception):
    """Base of every error jobgate raises."""

    transient = False


class FatalError(JobgateError):
    """Retrying the same call will fail the same way."""


class TransientError(JobgateError):
    """The same call may succeed later: back off and retry."""

    transient = True


class SpecError(FatalError):
    """A job spec or a config value is invalid; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class ConfigError(SpecError):
    """The configuration file is invalid."""


class NotFoundError(FatalError):
    """No such job (or destination)."""


class ConflictError(FatalError):
    """The request conflicts with the stored state (e.g. a reused idempotency key)."""


class InvalidTransition(FatalError):
    """A state change that the transition table does not allow."""


class SubmitError(FatalError):
    """The scheduler refused the job; the message is the scheduler's own."""


class SchedulerUnavailable(TransientError):
    """The scheduler or the transport did not answer; jobs keep their state."""
