"""MissionControl's echo job module, in its own convention: `build_work_dir` writes an
entrypoint that echoes `params['message']` into a file, and the parser reads it back.
jobgate runs it unchanged (`job_type = "examples.jobtypes.echo"`)."""

import tempfile
import textwrap
from pathlib import Path

OUTPUT_FILE_NAME = "echo_job.out"


def build_work_dir(*args, params=None, output_dir=None, **kwargs):
    output_dir = output_dir or tempfile.mkdtemp()
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    entrypoint_name = "entrypoint.sh"
    entrypoint = textwrap.dedent(
        """\
        #!/bin/bash
        DIR="$( cd "$( dirname "${{BASH_SOURCE[0]}}" )" && pwd )"
        cd "$DIR"
        echo {message} | tee {output}
        """
    ).format(message=params["message"], output=OUTPUT_FILE_NAME)
    path = Path(output_dir, entrypoint_name)
    path.write_text(entrypoint)
    path.chmod(0o775)
    return {"dir": output_dir, "entrypoint_name": entrypoint_name}


def parse_work_dir(*args, work_dir=None, **kwargs):
    return {"output": Path(work_dir, OUTPUT_FILE_NAME).read_text()}
