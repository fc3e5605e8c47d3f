"""The job environment policy: exactly the base, the destination's pass_env, the spec's
variables and jobgate's own; nothing else of the gateway's. The real processes of every
backend are in tests/integration/test_job_environment.py."""

from __future__ import annotations

import os
import pwd
import subprocess

from test_render import ACCOUNT, record

from jobgate.backends.environment import BASE, clean_command, job_environment
from jobgate.backends.layout import JobFiles
from jobgate.backends.pbs import PBSScheduler
from jobgate.backends.scripts import render
from jobgate.backends.slurm import SlurmScheduler
from jobgate.config import Destination

GATEWAY = {
    "PATH": "/opt/site/bin:/usr/bin",
    "LANG": "de_DE.UTF-8",
    "JOBGATE_HOME": "/srv/jobgate",
    "JOBGATE_DATABASE_URL": "postgresql://gw:secret@db/jobgate",
    "MODULEPATH": "/etc/modules",
    "LMOD_CMD": "/usr/bin/lmod",
    "LMODX": "not a match",
    "BASH_FUNC_module%%": "() { :; }",
}
LOCAL = Destination(name="local", pass_env=["MODULEPATH", "LMOD_*", "BASH_FUNC_*"])
REMOTE = Destination(
    name="remote", scheduler="process", transport="ssh", host="h", pass_env=["MODULEPATH"]
)


def test_on_this_host_exactly_base_pass_env_spec_and_jobgates_own() -> None:
    job = record(script="true", environment={"OMP_NUM_THREADS": "4", "JOBGATE_JOB_ID": "mine"})
    env = job_environment(job, LOCAL, "/runs/x", gateway_env=GATEWAY, account=ACCOUNT)
    assert env.values == {
        "PATH": "/opt/site/bin:/usr/bin",
        "HOME": "/home/alice",
        "USER": "alice",
        "LANG": "de_DE.UTF-8",
        "TMPDIR": "/tmp",  # the gateway has none: the default
        "SHELL": "/bin/bash",
        "LMOD_CMD": "/usr/bin/lmod",
        "MODULEPATH": "/etc/modules",
        "OMP_NUM_THREADS": "4",
        "JOBGATE_JOB_ID": job.id,  # jobgate's own win over the spec's
        "JOBGATE_RUN_DIR": "/runs/x",
        "JOBGATE_EVENTS": "/runs/x/jobgate.events",
    }
    assert env.defaults == {}
    assert env.command_env() == [
        f"{k}={env.values[k]}"
        for k in (*BASE, "JOBGATE_JOB_ID", "JOBGATE_RUN_DIR", "JOBGATE_EVENTS")
    ]


def test_the_spec_may_set_a_base_variable_and_the_account_defaults_to_the_gateways() -> None:
    job = record(script="true", environment={"PATH": "/mine/bin"})
    env = job_environment(job, Destination(name="local"), "/r", gateway_env={})
    me = pwd.getpwuid(os.geteuid())
    assert (env.values["PATH"], env.values["LANG"]) == ("/mine/bin", "C.UTF-8")
    assert (env.values["HOME"], env.values["USER"]) == (me.pw_dir, me.pw_name)


def test_on_another_host_its_login_keeps_its_own_base() -> None:
    job = record(script="true", environment={"LANG": "C"})
    env = job_environment(job, REMOTE, "/home/u/runs/x", gateway_env=GATEWAY)
    assert env.values == {
        "MODULEPATH": "/etc/modules",
        "LANG": "C",
        "JOBGATE_JOB_ID": job.id,
        "JOBGATE_RUN_DIR": "/home/u/runs/x",
        "JOBGATE_EVENTS": "/home/u/runs/x/jobgate.events",
    }
    assert env.defaults == {"PATH": "/usr/local/bin:/usr/bin:/bin", "TMPDIR": "/tmp"}
    argv = ["bash", "cancel.sh"]
    assert clean_command(argv, env, REMOTE) == argv  # the login's environment, not ours
    local = job_environment(job, LOCAL, "/r", gateway_env=GATEWAY, account=ACCOUNT)
    assert clean_command(argv, local, LOCAL) == ["/usr/bin/env", "-i", *local.command_env(), *argv]


def test_a_rendered_wrapper_fills_in_only_what_a_login_lacks() -> None:
    job = record(script="true", environment={"GREETING": "hi there"})
    files = JobFiles.of(job, f"/runs/{job.id}")
    text = render("process.sh.j2", job, files, job_environment(job, REMOTE, files.run_dir))
    exports = "\n".join(line for line in text.splitlines() if line.startswith(("export ", "[ -n ")))
    done = subprocess.run(
        ["/usr/bin/env", "-i", "PATH=/login/bin", "/bin/bash", "-c", exports + "\n/usr/bin/env"],
        capture_output=True,
        text=True,
        check=True,
    )
    env = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert env["PATH"] == "/login/bin" and env["TMPDIR"] == "/tmp"
    assert env["LANG"] == "C.UTF-8" and env["GREETING"] == "hi there"
    assert env["JOBGATE_JOB_ID"] == job.id


def test_submit_commands_pass_none_of_the_submitters_environment() -> None:
    files = JobFiles.of(record(script="true"), "/runs/01JOBGATE0000000000000TEST")
    slurm = SlurmScheduler(Destination(name="s", scheduler="slurm"))
    # ALL of what sbatch has: `env -i` and the job's base (BatchBackend.submit)
    assert "--export=ALL" in slurm.submit_command("/runs/x/jobgate.sh", files)
    qsub = PBSScheduler(Destination(name="p", scheduler="pbs")).submit_command("x.sh", files)
    assert qsub[-3:] == ["-v", "JOBGATE_JOB_ID=01JOBGATE0000000000000TEST", "x.sh"]
    assert "-V" not in qsub
