"""A Prometheus histogram without a client library: the API's submit latency and each
destination's status rounds (observed where they happen, rendered by api/metrics.py)."""

from __future__ import annotations

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.total += seconds
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
                return
        self.counts[-1] += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        """Exposition lines; `labels` as `key="value"`, joined before `le`."""
        out, running, pre = [], 0, f"{labels}," if labels else ""
        for bound, n in zip((*BUCKETS, float("inf")), self.counts, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(f'{name}_bucket{{{pre}le="{le}"}} {running}')
        tail = f"{{{labels}}}" if labels else ""
        return [*out, f"{name}_sum{tail} {self.total}", f"{name}_count{tail} {running}"]
