"""jobgate as a PSI/J executor: `psij.JobExecutor.get_instance('jobgate', url=...)`.

PSI/J finds the executor through `psij-descriptors/jobgate_descriptor.py`, installed at
the top of the wheel next to `jobgate/`; see docs/psij.md.
"""

# psij first: importing it loads every executor plugin, ours included, and our plugin
# imports `jobgate.psij.executor`, which must then find psij complete enough to subclass.
import psij  # noqa: F401  # isort: skip

from jobgate.psij.config import JobgateExecutorConfig
from jobgate.psij.executor import JobgateExecutor

__all__ = ["JobgateExecutor", "JobgateExecutorConfig"]
