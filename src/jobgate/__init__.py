"""jobgate: one gateway for batch jobs."""

from jobgate.client import Client
from jobgate.config import Config, Destination, load_config
from jobgate.errors import (
    ConflictError,
    FatalError,
    JobgateError,
    NotFoundError,
    SpecError,
    TransientError,
)
from jobgate.sdk import AsyncGateway, Gateway, Job
from jobgate.spec import FileStage, JobEvent, JobRecord, JobSpec, Resources
from jobgate.states import JobState
from jobgate.version import __version__

__all__ = [
    "AsyncGateway",
    "Client",
    "Config",
    "ConflictError",
    "Destination",
    "FatalError",
    "FileStage",
    "Gateway",
    "Job",
    "JobEvent",
    "JobRecord",
    "JobSpec",
    "JobState",
    "JobgateError",
    "NotFoundError",
    "Resources",
    "SpecError",
    "TransientError",
    "__version__",
    "load_config",
]
