"""A job module whose builder fails (tests/integration/test_job_types.py)."""


def build_work_dir(*args, params=None, output_dir=None, **kwargs):
    raise RuntimeError(f"cannot build for {params['what']}")
