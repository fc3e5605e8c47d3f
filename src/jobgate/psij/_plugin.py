"""The module PSI/J's plugin loader executes (by file path, outside the import system) to
get the executor class. It only re-exports, so the class PSI/J instantiates is the same
object as `jobgate.psij.JobgateExecutor` (isinstance checks and configs keep working)."""

from jobgate.psij.executor import JobgateExecutor

__all__ = ["JobgateExecutor"]
