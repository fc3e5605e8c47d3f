"""The built-in `python` job type: call `module:function(**kwargs)` in the job (with the
destination's `python3`); its return value, as JSON, is the job's result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RESULT = "result.json"

_RUNNER = """\
import importlib, json, os, sys
sys.path.insert(0, os.getcwd())
call = json.load(open("call.json"))
module, _, name = call["function"].partition(":")
value = getattr(importlib.import_module(module), name)(**call["kwargs"])
with open("result.json.tmp", "w") as f:
    json.dump(value, f, default=str)
os.replace("result.json.tmp", "result.json")
"""


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    function: str = Field(
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:function to call"
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Its keyword arguments")
    python: str = Field(default="python3", pattern=r"^[\w./+-]+$")


def build_work_dir(
    *args: Any, params: dict[str, Any], output_dir: str, **kwargs: Any
) -> dict[str, str]:
    p = Params.model_validate(params)
    out = Path(output_dir)
    (out / "call.json").write_text(json.dumps({"function": p.function, "kwargs": p.kwargs}))
    (out / "run.py").write_text(_RUNNER)
    (out / "entrypoint.sh").write_text(f"#!/bin/sh\nexec {p.python} run.py\n")
    return {"dir": output_dir, "entrypoint_name": "entrypoint.sh"}


def parse_results(run_dir: str) -> dict[str, Any]:
    path = Path(run_dir, "work_dir", RESULT)
    value = json.loads(path.read_text())
    return value if isinstance(value, dict) else {"value": value}
