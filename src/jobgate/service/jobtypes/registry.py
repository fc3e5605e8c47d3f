"""Where job types come from: the built-in ones, the `jobgate.job_types` entry points,
the `[job_types]` table of jobgate.toml, and (embedded, or when the config allows it)
any importable module that follows MissionControl's convention: a module-level
`build_work_dir(*args, params=None, output_dir=None, **kwargs)` returning
`{"dir": ..., "entrypoint_name": ...}`, and optionally `parse_results(run_dir)` (or
MissionControl's `parse_work_dir(work_dir=...)`) and a pydantic model `Params`."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ValidationError

from jobgate.errors import SpecError

ENTRY_POINTS = "jobgate.job_types"
BUILTIN = {"python": "jobgate.service.jobtypes.python_type"}

Builder = Callable[..., dict[str, Any]]
Parser = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class JobType:
    name: str
    build_work_dir: Builder
    parse_results: Parser | None = None
    params: type[BaseModel] | None = None  # validates job_params; errors name the param

    def check(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.params is None:
            return params
        try:
            return self.params.model_validate(params).model_dump(mode="json")
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise SpecError(f"job_params.{where}" if where else "job_params", err["msg"]) from None

    @classmethod
    def of_module(cls, name: str, module: ModuleType) -> JobType:
        build = getattr(module, "build_work_dir", None)
        if not callable(build):
            raise SpecError("job_type", f"{name!r}: its module has no build_work_dir()")
        parse = getattr(module, "parse_results", None)
        if parse is None and callable(getattr(module, "parse_work_dir", None)):
            mc_parse = module.parse_work_dir
            parse = lambda run_dir: mc_parse(work_dir=f"{run_dir}/work_dir")  # noqa: E731
        params = getattr(module, "Params", None)
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            params = None
        return cls(name, build, parse, params)


class JobTypes:
    """Name -> JobType, resolved once per name (modules are imported on first use)."""

    def __init__(self, configured: dict[str, str], any_module: bool) -> None:
        self._named = {**BUILTIN, **_entry_points(), **configured}
        self._any_module = any_module
        self._loaded: dict[str, JobType] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted(self._named)

    def get(self, name: str, embedded: bool = False) -> JobType:
        """`embedded`: the caller runs this process, so any module of theirs may be named;
        a server imports only the types its configuration names (importing runs code)."""
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            target = self._named.get(name)
            if target is None:
                if not (embedded or self._any_module) or not _dotted(name):
                    known = ", ".join(self.names())
                    raise SpecError("job_type", f"unknown job type {name!r} (known: {known})")
                target = name
            job_type = _load(name, target, self.names())
            self._loaded[name] = job_type
            return job_type


def _dotted(name: str) -> bool:
    return all(part.isidentifier() for part in name.replace(":", ".").split("."))


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINTS)}


def _load(name: str, target: str, known: list[str]) -> JobType:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(
            "job_type",
            f"{name!r}: cannot import {module_name!r} ({exc}; is it installed or on "
            f"PYTHONPATH?); registered: {', '.join(known)}",
        ) from None
    if not attr:
        return JobType.of_module(name, module)
    found = getattr(module, attr, None)
    if isinstance(found, JobType):
        return found
    if isinstance(found, ModuleType):
        return JobType.of_module(name, found)
    raise SpecError("job_type", f"{name!r}: {target} is not a JobType")
