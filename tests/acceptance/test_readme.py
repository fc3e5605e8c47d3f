"""The README's service walkthrough, run as it is written (free ports instead of 8765 and
9000): a real `jobgate serve` with the README's jobgate.toml, curl, the CLI through the
API, and the example receiver checking the signature of every callback."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from conftest import JOBGATE, ServeProcess, free_port, need
from jobgate import Client, JobState

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
WAIT = 60


def block(after: str, lang: str) -> str:
    """The first ```lang block after the text `after` in the README."""
    text = README.read_text()
    start = text.index(f"```{lang}\n", text.index(after)) + len(lang) + 4
    return text[start : text.index("```", start)]


class Output:
    """A process's stdout lines, as they come; wait for one matching a pattern."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, pattern: str) -> str:
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(re.search(pattern, line) for line in self.lines), WAIT
            )
        assert found, f"no line matching {pattern!r} in:\n" + "\n".join(self.lines)
        return next(line for line in self.lines if re.search(pattern, line))


def test_the_readme_service_walkthrough(tmp_path: Path, serve: Callable[..., ServeProcess]) -> None:
    need(shutil.which("curl") is not None, "curl is not installed")
    need((ROOT / ".venv/bin/jobgate").exists(), "the README's .venv (make run) is not set up")
    hook_port = free_port()
    (tmp_path / "jobgate.toml").write_text(block("### The service", "toml"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBGATE_")}
    env |= {
        "JOBGATE_HOME": str(tmp_path / "home"),
        "JOBGATE_CONFIG": str(tmp_path / "jobgate.toml"),
    }
    api_port = serve(env, "--port", "0").url.rsplit(":", 1)[1]

    script = block("<!-- readme-walkthrough -->", "sh")
    script = script.replace("8765", api_port).replace("9000", str(hook_port))
    # Its own session: the receiver it leaves in the background is killed with it, after.
    errors = tmp_path / "stderr"  # a file: the background receiver keeps a pipe open
    with errors.open("w") as stderr:
        proc = subprocess.Popen(
            ["bash", "-c", script],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    try:
        out = Output(proc)
        assert proc.wait(WAIT) == 0, errors.read_text()
        assert "Traceback" not in errors.read_text() and "rror" not in errors.read_text()

        curl_job = json.loads(out.wait_for(r"^\{"))  # curl's answer: the job
        assert curl_job["state"] == "QUEUED" and curl_job["owner"] == "alice"
        out.wait_for(r"^hello from .*, job directory ")  # `jobgate logs -f`, live
        assert re.search(r"FAILED", "\n".join(out.lines)), out.lines  # `jobgate show`: exit 3

        # The receiver: every state change of the curl job, in order, each signature good.
        done = f"callback \\d+ for {curl_job['id']}: COMPLETED \\(signature ok\\)"
        out.wait_for(done)
        calls = [line.split() for line in out.lines if f" for {curl_job['id']}: " in line]
        assert [int(c[1]) for c in calls] == list(range(1, len(calls) + 1))
        called = [c[4] for c in calls]
        assert not any("BAD" in line for line in out.lines)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)

    # What the script did, seen by an admin: the cancelled job keeps its record.
    token = subprocess.run(
        [JOBGATE, "token", "create", "--user", "root", "--admin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with Client(f"http://127.0.0.1:{api_port}", token) as client:
        jobs = client.list()
        assert {j.record.owner for j in jobs} == {"alice"} and len(jobs) == 3
        (sleeper,) = [j for j in jobs if j.record.spec.executable == "/bin/sleep"]
        assert sleeper.wait(WAIT) == JobState.CANCELLED
        (hello,) = [j for j in jobs if "hello from" in (j.record.spec.script or "")]
        assert (hello.state, hello.exit_code) == (JobState.FAILED, 3)
        states = {s.value for s in JobState}
        changes = [e.type for e in client.get(curl_job["id"]).events() if e.type in states]
        assert called == changes and changes[0] == "QUEUED" and changes[-1] == "COMPLETED"
