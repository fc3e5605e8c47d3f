"""A TES task's executors as one job script. Paths a task names are container paths; in
the job they live beneath `root/` in the run directory, which a container runtime binds
at each mount point and the host runtime substitutes into the command (a task cannot
reach the host's own folders). Each executor's exit code and times go to `.tes/log`, its
output to `.tes/N.stdout` / `.tes/N.stderr` unless the task names files for them; one
that fails stops the rest unless it has `ignore_error`."""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Sequence

from jobgate.api.tes.models import Executor, Task

ROOT = "root"  # the task's file system, in the run directory
LOG = ".tes/log"  # "start N TIME", "end N CODE TIME" lines
NOW = "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# How each runtime runs an executor (a destination's `container_command` replaces it):
# {binds} the task's folders, {env} its variables, {workdir} its folder, {image}.
TEMPLATES = {
    "apptainer": "apptainer exec --containall {binds} {env} {workdir} {image}",
    "podman": "podman run --rm -i {binds} {env} {workdir} {image}",
    "docker": "docker run --rm -i {binds} {env} {workdir} {image}",
}
FLAGS = {"apptainer": ("--bind", "--env", "--pwd"), "oci": ("-v", "-e", "-w")}
# Never taken for mount points: a task's path beneath these would shadow the system.
SYSTEM = ("/", "/bin", "/sbin", "/lib", "/lib64", "/usr", "/etc", "/proc", "/sys", "/dev")


def mounts(task: Task) -> list[str]:
    """Folders the task's files live in (longest first): each input's and output's
    folder (a DIRECTORY's own path), its volumes and executors' working folders."""
    found: set[str] = set()
    named = [(f.path, f.type) for f in task.inputs] + [(f.path, f.type) for f in task.outputs]
    for given, kind in named:
        path = posixpath.normpath(given)
        found.add(path if kind == "DIRECTORY" else posixpath.dirname(path))
    found.update(posixpath.normpath(v) for v in task.volumes)
    for e in task.executors:
        if e.workdir:
            found.add(posixpath.normpath(e.workdir))
        found.update(
            posixpath.dirname(posixpath.normpath(p)) for p in (e.stdin, e.stdout, e.stderr) if p
        )
    return sorted((m for m in found if m not in SYSTEM), key=lambda m: (-len(m), m))


def inside(path: str) -> str:
    """A container path's place in the run directory."""
    return f"{ROOT}{posixpath.normpath(path)}"


def render(task: Task, runtime: str, template: str | None = None) -> str:
    points = mounts(task)
    lines = [
        'set -u\ncd "$JOBGATE_RUN_DIR" || exit 126',
        f"mkdir -p .tes {ROOT} {' '.join(shlex.quote(inside(m)) for m in points)}".rstrip(),
    ]
    for i, executor in enumerate(task.executors):
        lines.append(f'printf "start {i} %s\\n" "{NOW}" >> {LOG}')
        command = _command(executor, runtime, points, template)
        lines.append(f"{command}{_redirects(executor, i, runtime, points)}")
        lines.append(f'c=$?; printf "end {i} %s %s\\n" "$c" "{NOW}" >> {LOG}')
        if not executor.ignore_error:
            lines.append('[ "$c" -eq 0 ] || exit "$c"')
    lines.append("exit 0")
    return "\n".join(lines) + "\n"


def _command(e: Executor, runtime: str, points: Sequence[str], template: str | None) -> str:
    workdir = e.workdir or ""
    if runtime == "host":
        env = [shlex.quote(f"{k}=") + _host_word(v, points) for k, v in e.env.items()]
        argv = [_host_word(a, points) for a in e.command]
        where = '"$JOBGATE_RUN_DIR"/' + shlex.quote(inside(workdir) if workdir else ROOT)
        return f"( cd {where} && exec env {' '.join(['--', *env, *argv])} )"
    binds = [f"$RUN/{inside(m)}:{m}" for m in points]
    flags = FLAGS["apptainer" if runtime == "apptainer" else "oci"]
    image = e.image
    if runtime == "apptainer" and "://" not in image:
        image = f"docker://{image}"
    parts = {
        "{binds}": [w for b in binds for w in (flags[0], b)],
        "{env}": [w for k, v in e.env.items() for w in (flags[1], f"{k}={v}")],
        "{workdir}": [flags[2], workdir] if workdir else [],
        "{image}": [image],
    }
    words = []
    for word in shlex.split((template or TEMPLATES[runtime]).replace("{runtime}", runtime)):
        words += parts.get(word, [word])
    return " ".join(_word(w) for w in [*words, *e.command])


def _word(word: str) -> str:
    """Quoted, but the run directory left for the shell to expand (ours, not the task's)."""
    if word.startswith("$RUN/") and ":" in word:
        src, _, dst = word.partition(":")
        return f'"$JOBGATE_RUN_DIR"/{shlex.quote(src[5:])}:{shlex.quote(dst)}'
    return shlex.quote(word)


def _redirects(e: Executor, i: int, runtime: str, points: Sequence[str]) -> str:
    stdin = shlex.quote(inside(e.stdin)) if e.stdin else "/dev/null"
    out = shlex.quote(inside(e.stdout)) if e.stdout else f".tes/{i}.stdout"
    err = shlex.quote(inside(e.stderr)) if e.stderr else f".tes/{i}.stderr"
    return f" < {stdin} > {out} 2> {err}"


def _host_word(text: str, points: Sequence[str]) -> str:
    """One shell word for the host runtime: a mount point named in it (`/data/x`,
    `--in=/data/x`, `cat /data/x > /out/y`) becomes its place in the run directory."""
    if not points:
        return shlex.quote(text)
    alternatives = "|".join(re.escape(p) for p in points)  # longest first
    pattern = rf"(?<![\w./-])(?:{alternatives})(?=/|$|[\s'\";:,)=])"
    out, pos = [], 0
    for m in re.finditer(pattern, text):
        if m.start() > pos:
            out.append(shlex.quote(text[pos : m.start()]))
        out.append('"$JOBGATE_RUN_DIR"/' + shlex.quote(inside(m.group(0))))
        pos = m.end()
    if pos < len(text) or not out:
        out.append(shlex.quote(text[pos:]))
    return "".join(out)
