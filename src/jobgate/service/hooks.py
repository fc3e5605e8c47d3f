"""A site's hooks on a destination (`[destinations.NAME.hooks]`), asked about every job
sent there from any door: an executable validator (`VALIDATOR JOB OUTPUT_DIR`, exit 0 =
valid, as Alces' validate-job) and Python callables (entry point group `jobgate.hooks`,
`validate(spec) -> reason | None`). A refusal, or a hook that cannot answer, ends the job
REJECTED with the reason: a site's check fails closed. Both block (a process, a site's
code), so async doors ask them off the event loop."""

from __future__ import annotations

import importlib
import inspect
import os
import shlex
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from pathlib import Path

from jobgate.config import Config, Hooks
from jobgate.errors import ConfigError
from jobgate.spec import JobRecord, JobSpec

ENTRY_POINTS = "jobgate.hooks"
VALIDATOR_TIMEOUT_S = 60.0
SAID_CHARS = 2000  # of a refusing validator's output, kept as the reason

Validate = Callable[[JobRecord], "str | None"]


def run_validator(
    hook: str | bytes, job: bytes, env: Mapping[str, str] | None = None
) -> str | None:
    """Run `hook JOB OUTPUT_DIR` in a fresh temporary folder (`hook`: a path, or an
    executable's bytes, as a queue keeps them): None if it exits 0, else why not."""
    with tempfile.TemporaryDirectory(prefix="jobgate-validate-") as tmp:
        job_file, out = Path(tmp, "job"), Path(tmp, "output")
        job_file.write_bytes(job)
        out.mkdir()
        command = Path(tmp, "validate-job") if isinstance(hook, bytes) else Path(hook)
        if isinstance(hook, bytes):
            command.write_bytes(hook)
            command.chmod(0o700)
        try:
            res = subprocess.run(
                [str(command), str(job_file), str(out)],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=VALIDATOR_TIMEOUT_S,
                cwd=tmp,
                env=None if env is None else {**os.environ, **env},
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"the validator could not run: {exc}"
    if res.returncode == 0:
        return None
    said = (res.stdout + res.stderr).strip()[-SAID_CHARS:]
    return f"refused by the validator (exit {res.returncode}): {said}"


class SiteHooks:
    """Each destination's validators, Python ones imported once, on first use."""

    def __init__(self, config: Config) -> None:
        self._hooks = {name: dest.hooks for name, dest in config.destinations.items()}
        self._loaded: dict[str, list[Validate]] = {}
        self._lock = threading.Lock()

    def any(self, destination: str) -> bool:
        return self._hooks[destination].any

    def load(self) -> None:
        """Import every destination's Python hooks: one that cannot be is a ConfigError."""
        for name in self._hooks:
            self._python(name)

    def refusal(self, job: JobRecord) -> str | None:
        """Why the job may not run (None: it may). Blocking."""
        for validate in self._python(job.destination):
            try:
                reason = validate(job)
            except Exception as exc:  # a site's code: its failure refuses, and says so
                return f"the hook {_name(validate)} failed: {type(exc).__name__}: {exc}"
            if reason:
                return str(reason)
        hooks = self._hooks[job.destination]
        if hooks.validator is None:
            return None
        env = {"JOBGATE_USER": job.owner, "JOBGATE_DESTINATION": job.destination}
        return run_validator(hooks.validator, job_file(job.spec), env)

    def _python(self, destination: str) -> list[Validate]:
        with self._lock:
            if destination not in self._loaded:
                hooks: Hooks = self._hooks[destination]
                self._loaded[destination] = [_load(destination, n) for n in hooks.python]
            return self._loaded[destination]


def job_file(spec: JobSpec) -> bytes:
    """What a validator reads as the job file: the script, or the command line."""
    if spec.script is not None:
        return spec.script.encode()
    return (shlex.join([spec.executable or "", *spec.arguments]) + "\n").encode()


def _load(destination: str, name: str) -> Validate:
    field = f"destinations.{destination}.hooks.python"
    registered = {ep.name: ep for ep in entry_points(group=ENTRY_POINTS)}
    try:
        if name in registered:
            found = registered[name].load()
        else:
            module, _, attr = name.partition(":")
            if not attr:
                known = ", ".join(sorted(registered)) or "none"
                raise ConfigError(field, f"no hook {name!r} in {ENTRY_POINTS} (known: {known})")
            found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(field, f"cannot load hook {name!r}: {exc}") from None
    validate = getattr(found, "validate", found)  # a function, or an object with validate()
    if not callable(validate):
        raise ConfigError(field, f"hook {name!r} is neither a function nor has validate()")
    wants_owner = "owner" in inspect.signature(validate).parameters

    def call(job: JobRecord) -> str | None:
        if wants_owner:
            return validate(job.spec, owner=job.owner)  # type: ignore[no-any-return]
        return validate(job.spec)  # type: ignore[no-any-return]

    call.__qualname__ = name
    return call


def _name(validate: Validate) -> str:
    return getattr(validate, "__qualname__", repr(validate))
