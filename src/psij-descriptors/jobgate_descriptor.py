"""Registers the `jobgate` executor with PSI/J.

PSI/J scans every sys.path root for a `psij-descriptors` folder (a namespace package: no
__init__.py) and loads each descriptor's class from the same root, so this folder ships at
the top of the wheel beside `jobgate/` (and sits in src/ beside it for editable installs).
"""

from importlib.metadata import PackageNotFoundError, version

from packaging.version import Version
from psij.descriptor import Descriptor

try:
    _VERSION = version("jobgate")
except PackageNotFoundError:  # a source checkout on PYTHONPATH, not installed
    _VERSION = "0"

__PSI_J_EXECUTORS__ = [
    Descriptor(
        name="jobgate",
        nice_name="jobgate",
        version=Version(_VERSION),
        cls="jobgate.psij._plugin.JobgateExecutor",
    )
]
