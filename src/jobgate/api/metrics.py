"""Prometheus text exposition, without a client library: a few counters and histograms."""

from __future__ import annotations

from jobgate.histogram import Histogram
from jobgate.states import JobState


class Metrics:
    def __init__(self) -> None:
        self.submit_latency = Histogram()

    def render(
        self,
        counts: dict[str, dict[JobState, int]],
        callbacks: dict[str, int],
        refused: dict[str, int],
        polls: dict[str, Histogram] | None = None,
    ) -> str:
        """`counts`: jobs by destination and state; `callbacks`: deliveries by outcome;
        `refused`: state changes that did not take, by target state; `polls`: each polled
        destination's status rounds (in this process)."""
        lines = ["# TYPE jobgate_jobs gauge"]
        for dest, states in sorted(counts.items()):
            for state, n in sorted(states.items()):
                lines.append(f'jobgate_jobs{{destination="{dest}",state="{state.value}"}} {n}')
        lines.append("# TYPE jobgate_submit_seconds histogram")
        lines += self.submit_latency.lines("jobgate_submit_seconds")
        lines.append("# TYPE jobgate_poll_seconds histogram")
        for dest, hist in sorted((polls or {}).items()):
            lines += hist.lines("jobgate_poll_seconds", f'destination="{dest}"')
        lines.append("# TYPE jobgate_callback_deliveries_total counter")
        for outcome, n in sorted(callbacks.items()):
            lines.append(f'jobgate_callback_deliveries_total{{outcome="{outcome}"}} {n}')
        lines.append("# TYPE jobgate_transitions_refused_total counter")
        for target, n in sorted(refused.items()):
            lines.append(f'jobgate_transitions_refused_total{{to="{target}"}} {n}')
        return "\n".join(lines) + "\n"
