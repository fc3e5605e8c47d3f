"""Prometheus text exposition, without a client library: a few counters and histograms."""

from __future__ import annotations

from jobgate.states import JobState

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.total += seconds
        for i, bound in enumerate(_BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
                return
        self.counts[-1] += 1

    def lines(self, name: str) -> list[str]:
        out, running = [], 0
        for bound, n in zip((*_BUCKETS, float("inf")), self.counts, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(f'{name}_bucket{{le="{le}"}} {running}')
        return [*out, f"{name}_sum {self.total}", f"{name}_count {running}"]


class Metrics:
    def __init__(self) -> None:
        self.submit_latency = Histogram()
        self.poll_latency = Histogram()

    def render(
        self,
        counts: dict[str, dict[JobState, int]],
        callbacks: dict[str, int],
        refused: dict[str, int],
    ) -> str:
        """`counts`: jobs by destination and state; `callbacks`: deliveries by outcome;
        `refused`: state changes that did not take, by target state."""
        lines = ["# TYPE jobgate_jobs gauge"]
        for dest, states in sorted(counts.items()):
            for state, n in sorted(states.items()):
                lines.append(f'jobgate_jobs{{destination="{dest}",state="{state.value}"}} {n}')
        lines.append("# TYPE jobgate_submit_seconds histogram")
        lines += self.submit_latency.lines("jobgate_submit_seconds")
        lines.append("# TYPE jobgate_poll_seconds histogram")
        lines += self.poll_latency.lines("jobgate_poll_seconds")
        lines.append("# TYPE jobgate_callback_deliveries_total counter")
        for outcome, n in sorted(callbacks.items()):
            lines.append(f'jobgate_callback_deliveries_total{{outcome="{outcome}"}} {n}')
        lines.append("# TYPE jobgate_transitions_refused_total counter")
        for target, n in sorted(refused.items()):
            lines.append(f'jobgate_transitions_refused_total{{to="{target}"}} {n}')
        return "\n".join(lines) + "\n"
