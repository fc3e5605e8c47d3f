"""The Prometheus text of /metrics: histograms cumulative per bucket, labelled per
destination, and a destination that never polled absent rather than zero."""

from __future__ import annotations

from jobgate.api.metrics import Metrics
from jobgate.histogram import BUCKETS, Histogram
from jobgate.states import JobState


def test_a_histogram_counts_cumulatively_with_its_labels() -> None:
    hist = Histogram()
    for seconds in (0.0005, 0.02, 0.02, 99.0):
        hist.observe(seconds)
    lines = hist.lines("jobgate_poll_seconds", 'destination="hpc"')
    assert len(lines) == len(BUCKETS) + 3
    assert lines[0] == 'jobgate_poll_seconds_bucket{destination="hpc",le="0.001"} 1'
    assert 'jobgate_poll_seconds_bucket{destination="hpc",le="0.025"} 3' in lines
    assert lines[len(BUCKETS)] == 'jobgate_poll_seconds_bucket{destination="hpc",le="+Inf"} 4'
    assert lines[-2] == 'jobgate_poll_seconds_sum{destination="hpc"} 99.0405'
    assert lines[-1] == 'jobgate_poll_seconds_count{destination="hpc"} 4'


def test_metrics_name_each_polled_destination_and_no_other() -> None:
    metrics, slurm = Metrics(), Histogram()
    metrics.submit_latency.observe(0.003)
    slurm.observe(0.2)
    text = metrics.render({"local": {JobState.RUNNING: 2}}, {}, {}, {"slurm": slurm})
    assert 'jobgate_jobs{destination="local",state="RUNNING"} 2' in text
    assert "jobgate_submit_seconds_count 1" in text.splitlines()
    assert 'jobgate_poll_seconds_count{destination="slurm"} 1' in text.splitlines()
    assert 'destination="local",le=' not in text  # local jobs are not polled: no series
