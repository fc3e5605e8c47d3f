"""Where a job's files are, on the host where it runs: one layout for every backend."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from jobgate.spec import JobRecord

EXITCODE = "exitcode"  # the sidecar the wrapper writes atomically when the job ends
WRAPPER = "jobgate.sh"


@dataclass(frozen=True)
class JobFiles:
    """Paths of one job, on the host where it runs."""

    run_dir: str
    workdir: str
    stdout: str
    stderr: str
    stdin: str | None

    @classmethod
    def of(cls, job: JobRecord, run_dir: str) -> JobFiles:
        spec = job.spec
        workdir = posixpath.join(run_dir, spec.directory) if spec.directory else run_dir

        def named(path: str | None, default: str) -> str:
            """A file the user named is relative to the workdir; ours live in the run dir."""
            return posixpath.join(workdir, path) if path else f"{run_dir}/{default}"

        return cls(
            run_dir=run_dir,
            workdir=workdir,
            stdout=named(spec.stdout, "stdout"),
            stderr=named(spec.stderr, "stderr"),
            stdin=named(spec.stdin, "") if spec.stdin else None,
        )

    def marker(self, name: str) -> str:
        return f"{self.run_dir}/{name}"

    @property
    def own_workdir(self) -> bool:
        """The working directory is made by jobgate (inside the run directory)."""
        return self.workdir.startswith(self.run_dir + "/")
