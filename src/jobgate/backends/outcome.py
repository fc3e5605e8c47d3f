"""How a job ended, said once for every backend: the evidence (exit code, signal, what the
scheduler said) and whether the gateway stopped it become one end state and reason."""

from __future__ import annotations

import signal as signals
from dataclasses import dataclass, field
from typing import Any

from jobgate.states import JobState, StopReason


@dataclass
class Outcome:
    """What a backend learned about one job: RUNNING, or how it ended."""

    state: JobState
    exit_code: int | None = None
    reason: str | None = None
    host: str | None = None
    native_state: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    ended_at: float | None = None  # when it ended, if that was before it was seen to end

    def fields(self, reason: str | None, code: str | None = None) -> dict[str, Any]:
        """The job's columns this says (the store names the reason code unless `code`)."""
        out: dict[str, Any] = {"exit_code": self.exit_code, "reason": reason}
        if self.native_state and self.state != JobState.RUNNING:
            out["native_state"] = self.native_state[:32]
        if code is not None:
            out["reason_code"] = code
        if self.host:
            out["host"] = self.host
        if self.ended_at is not None:  # it ended while no gateway watched
            out["finished_at"] = self.ended_at
        return out


def signal_name(sig: int) -> str:
    try:
        return signals.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def exit_reason(code: int | None, sig: int | None = None, detail: str | None = None) -> str:
    """The reason text of a job that failed with `code` (or was killed by `sig`)."""
    if sig:
        return f"killed by {signal_name(sig)}"
    if code is None:
        return "no exit code"
    if code == 127:
        return "exit code 127: command not found"
    if code == 126:
        return f"exit code 126: {detail or 'cannot execute or cannot enter the working directory'}"
    if 128 < code < 128 + 65:
        return f"exit code {code} (killed by {signal_name(code - 128)})"
    return f"exit code {code}"


def ended(
    exit_code: int | None,
    stop: StopReason | None = None,
    *,
    state: JobState | None = None,
    signal: int | None = None,
    reason: str | None = None,
    host: str | None = None,
    native_state: str | None = None,
) -> Outcome:
    """The outcome of a job that is no longer running.

    `state` is what the scheduler said, when it said (TIMEOUT, or FAILED "out of memory");
    without it the exit code decides, and no code at all is LOST. A job the gateway stopped
    ends CANCELLED or TIMEOUT - unless it completed first: success is reported as it was.
    """
    if state is None:
        state = (
            JobState.COMPLETED
            if exit_code == 0
            else JobState.FAILED
            if exit_code is not None or signal
            else JobState.LOST
        )
    if state == JobState.COMPLETED and exit_code not in (0, None):
        state = JobState.FAILED
    if stop is not None and state != JobState.COMPLETED:
        return Outcome(stop.state, exit_code, stop.reason, host, native_state)
    if state == JobState.FAILED and not reason:
        reason = exit_reason(exit_code, signal)
    elif state == JobState.CANCELLED and not reason:
        reason = "cancelled outside jobgate (by the scheduler or an administrator)"
    elif state == JobState.LOST and not reason:
        reason = "the job is gone and left no exit code"
    return Outcome(state, exit_code, reason, host, native_state)
