"""A small parameter sweep: each job evaluates one point (x) of a damped oscillation
with the given damping, reports progress as it goes, and leaves its value as results.
Submit many with different x (and a label) and read them back as one table:

    for x in range(20):
        gw.submit(job_type="examples.jobtypes.sweep", job_params={"x": x / 10},
                  labels={"sweep": "demo"}, key=f"demo-{x}")
    jobgate results --job-type examples.jobtypes.sweep --csv
"""

import json
from pathlib import Path

from pydantic import BaseModel, Field


class Params(BaseModel):
    """Bad params are refused at submit, naming the param (job_params.x, ...)."""

    x: float = Field(description="The point to evaluate")
    damping: float = Field(default=0.5, ge=0)
    steps: int = Field(default=1000, ge=1, le=10_000_000)


RUNNER = """\
import json, math
p = json.load(open("params.json"))
print("@event=[SWEEP_STARTED:x=%s]" % p["x"], flush=True)
h = p["x"] / p["steps"]
area = sum(math.exp(-p["damping"] * i * h) * math.cos(i * h) * h for i in range(p["steps"]))
print("@var=[area:%r]" % area, flush=True)
json.dump({"x": p["x"], "damping": p["damping"], "y": math.exp(-p["damping"] * p["x"])
           * math.cos(p["x"]), "area": area}, open("value.json", "w"))
"""


def build_work_dir(*args, params=None, output_dir=None, **kwargs):
    work = Path(output_dir)
    (work / "params.json").write_text(json.dumps(params))
    (work / "run.py").write_text(RUNNER)
    (work / "entrypoint.sh").write_text("#!/bin/sh\nexec python3 run.py\n")
    return {"dir": output_dir, "entrypoint_name": "entrypoint.sh"}


def parse_results(run_dir):
    return json.loads(Path(run_dir, "work_dir", "value.json").read_text())
