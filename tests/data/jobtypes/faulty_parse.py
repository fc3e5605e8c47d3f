"""A job module whose job runs but whose parser fails (tests/integration/test_job_types.py)."""

from pathlib import Path


def build_work_dir(*args, params=None, output_dir=None, **kwargs):
    Path(output_dir, "entrypoint.sh").write_text("#!/bin/sh\necho ran\n")
    return {"dir": output_dir, "entrypoint_name": "entrypoint.sh"}


def parse_results(run_dir):
    raise ValueError("no value in " + Path(run_dir, "stdout").read_text().strip())
