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
        return cls.at(run_dir, spec.directory, spec.stdout, spec.stderr, spec.stdin)

    @classmethod
    def at(
        cls,
        run_dir: str,
        directory: str | None = None,
        stdout: str | None = None,
        stderr: str | None = None,
        stdin: str | None = None,
    ) -> JobFiles:
        """From the spec's paths alone (what listening to many jobs reads of each)."""
        workdir = posixpath.join(run_dir, directory) if directory else run_dir

        def named(path: str | None, default: str) -> str:
            """A file the user named is relative to the workdir; ours live in the run dir."""
            return posixpath.join(workdir, path) if path else f"{run_dir}/{default}"

        return cls(
            run_dir=run_dir,
            workdir=workdir,
            stdout=named(stdout, "stdout"),
            stderr=named(stderr, "stderr"),
            stdin=named(stdin, "") if stdin else None,
        )

    def anchor(self, path: str) -> tuple[str, str]:
        """`path` (absolute, or relative to the run directory) as (a directory the gateway
        trusts, the rest): the run directory, else the job's working directory, else (a
        path the job's own user named, embedded use) the file's folder."""
        full = posixpath.normpath(posixpath.join(self.run_dir, path))
        for root in (self.run_dir, self.workdir):
            if full.startswith(root.rstrip("/") + "/"):
                return root, full[len(root.rstrip("/")) + 1 :]
        return posixpath.split(full)

    def marker(self, name: str) -> str:
        return f"{self.run_dir}/{name}"

    @property
    def own_workdir(self) -> bool:
        """The working directory is made by jobgate (inside the run directory)."""
        return self.workdir.startswith(self.run_dir + "/")
