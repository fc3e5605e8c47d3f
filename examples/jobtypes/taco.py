"""MissionControl's taco example as a job module: the params name a wrapper and the
fillings; the builder writes one input file per filling and an entrypoint that assembles
them; the parser reads the taco back."""

import json
from pathlib import Path


def build_work_dir(*args, params=None, output_dir=None, **kwargs):
    work = Path(output_dir)
    inputs = work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    for i, filling in enumerate(params["fillings"]):
        (inputs / f"filling_{i}.txt").write_text(filling + "\n")
    (work / "entrypoint.sh").write_text(
        "#!/bin/sh\n"
        f"echo {json.dumps(params['wrapper'])} > taco.txt\n"
        "cat inputs/filling_*.txt >> taco.txt\n"
    )
    return {"dir": output_dir, "entrypoint_name": "entrypoint.sh"}


def parse_results(run_dir):
    wrapper, *fillings = Path(run_dir, "work_dir", "taco.txt").read_text().split()
    return {"wrapper": wrapper, "fillings": fillings}
