"""Job types: a name (or a module) that turns parameters into a job directory, and reads
results back from it once the job ran. docs/job-types.md."""

from jobgate.service.jobtypes.registry import JobType, JobTypes

__all__ = ["JobType", "JobTypes"]
