"""The service layer: JobService, the one entry for every door."""

from jobgate.service.files import LOG_STREAMS
from jobgate.service.jobs import Area, JobService

__all__ = ["LOG_STREAMS", "Area", "JobService"]
