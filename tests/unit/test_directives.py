"""Raw directives by allow-list: every spelling of an option jobgate sets itself is refused
(long, abbreviated, `=` or apart, short with the value attached or apart, a directive
prefix smuggled in), naming the directive and the option; a destination may allow more;
the sbatch option table is the installed sbatch's own."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Literal

import pytest

from jobgate.backends.pbs import PBSScheduler
from jobgate.backends.slurm import SlurmScheduler
from jobgate.backends.slurm_directives import SBATCH_TABLE, SLURM_DIRECTIVES
from jobgate.config import Destination
from jobgate.errors import ConfigError, SpecError
from jobgate.spec import Resources

SLURM = SlurmScheduler(Destination(name="slurm", scheduler="slurm"))
TORQUE = PBSScheduler(Destination(name="pbs", scheduler="pbs", flavor="torque"))
PBSPRO = PBSScheduler(Destination(name="pbs", scheduler="pbs", flavor="pbspro"))


def refusal(scheduler: SlurmScheduler | PBSScheduler, *directives: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        scheduler.check(Resources(directives=list(directives)))
    return info.value


@pytest.mark.parametrize(
    ("directive", "named"),
    [
        ("--time=99-00:00:00", "--time"),
        ("--time 99-00:00:00", "--time"),
        ("--reserv=maint", "--reserv (--reservation)"),
        ("-t99-00:00:00", "-t (--time)"),
        ("-t 99-00:00:00", "-t (--time)"),
        ("-time=99", "-t (--time)"),  # getopt_long reads a single dash as a letter
        ("--time-min=10", "--time-min"),
        ("--outp=/tmp/x", "--outp (--output)"),
        ("-o/tmp/x", "-o (--output)"),
        ("--error=/tmp/x", "--error"),
        ("--input=/etc/shadow", "--input"),
        ("-J mine", "-J (--job-name)"),
        ("-Jmine", "-J (--job-name)"),
        ("--job-nam=mine", "--job-nam (--job-name)"),
        ("--job-name mine", "--job-name"),
        ("-a0-3", "-a (--array)"),
        ("--arr=0-3", "--arr (--array)"),
        ("--partition=big", "--partition"),
        ("--parti=big", "--parti (--partition)"),
        ("-pbig", "-p (--partition)"),
        ("--export=ALL,LD_PRELOAD=/tmp/x.so", "--export"),
        ("--export-f=/tmp/env", "--export-f (--export-file)"),
        ("--get-user-env", "--get-user-env"),
        ("--account=other", "--account"),
        ("-Aother", "-A (--account)"),
        ("--qos=high", "--qos"),
        ("--mem=1T", "--mem"),
        ("-N4", "-N (--nodes)"),
        ("--dependency=afterok:1", "--dependency"),
        ("--chdir=/", "--chdir"),
        ("--wrap=id", "--wrap"),
        ("--comment=x", "--comment"),
        ("--exclusive", "--exclusive"),
        ("--clusters=other", "--clusters"),
        ("--uid=0", "--uid"),
        ("-W", "-W (--wait)"),
    ],
)
def test_options_jobgate_sets_are_refused_in_every_spelling(directive: str, named: str) -> None:
    err = refusal(SLURM, "--mail-type=END", directive)
    assert err.field == "resources.directives.1"
    assert err.message.startswith(f"{named} is set by jobgate itself"), err.message


@pytest.mark.parametrize(
    ("directive", "says"),
    [
        ("--hold", "--hold is not allowed on destination 'slurm'"),
        ("-H", "-H (--hold) is not allowed"),
        ("--mem-per=1G", "--mem-per is ambiguous (--mem-per-cpu, --mem-per-gpu)"),
        ("--no=1", "--no is ambiguous"),
        ("--clust=x", "--clust is ambiguous (--cluster-constraint, --clusters)"),
        ("--nosuch=1", "--nosuch: sbatch has no such option"),
        ("-Z", "-Z: sbatch has no such option"),
        ("--TIME=5", "does not start with an option"),
        ("--spread-job --time=5", "--spread-job takes no value"),
        ("-sJmine", "-s takes no value"),  # a flag and -J bundled
        ("--mail-user --time=5", "attach a value that starts with '-'"),
        ("--nice 5", "--nice takes its value attached: --nice=5"),
        ("--nice=-100", "only lowers the job's priority"),
        ("--mail-type", "--mail-type needs a value"),
        ("#SBATCH --time=99:00:00", "without a directive prefix"),
        ("--mail-user=a#SBATCH", "without a directive prefix"),
        ("--mail-type=END #PBS -N x", "without a directive prefix"),
        ("--mail-type=END --time=5", "one option per directive"),
        ("--mail-type='END'", "not one option with a plain value"),
        ("--comment=$(id)", "not one option with a plain value"),
    ],
)
def test_other_refusals_say_why(directive: str, says: str) -> None:
    err = refusal(SLURM, directive)
    assert err.field == "resources.directives.0"
    assert says in err.message, err.message


def test_no_kill_with_a_value_is_read_as_sbatch_reads_it() -> None:
    # `-kJmine` is --no-kill=Jmine to getopt (sbatch then refuses the value): never a -J.
    SLURM.check(Resources(directives=["-k", "-kJmine", "--no-kill", "--no-kill=off"]))


ALLOWED_SLURM = [
    "--mail-type=END,FAIL",
    "--mail-type END",
    "--mail-user=ops@example.org",
    "--signal=B:USR1@60",
    "--gpus-per-task=1",
    "--gpus-per-t=1",  # a prefix that names one option, as sbatch reads it
    "--tasks-per-node=2",  # an alias of --ntasks-per-node
    "--ntasks-per-node=2",
    "--mem-per-cpu=2G",
    "-w vm",
    "-wvm",
    "--exclude=node[1-3]",
    "--distribution=*:block",
    "--licenses=matlab:1",
    "-Lmatlab",
    "--nice",
    "--nice=10",
    "--requeue",
    "--no-requeue",
    "--hint=nomultithread",
    "-m block:cyclic",
]


def test_what_users_may_give() -> None:
    SLURM.check(Resources(directives=ALLOWED_SLURM))


def test_a_destination_may_allow_more_but_never_what_jobgate_sets() -> None:
    held = SlurmScheduler(
        Destination(name="held", scheduler="slurm", allowed_directives=["--hold", "-b"])
    )
    held.check(Resources(directives=["--hold", "-H", "--ho", "--begin=now+1hour"]))
    assert "--hold is not allowed" in refusal(SLURM, "--hold").message
    for names, says in [
        (["--time"], "--time is set by jobgate itself and cannot be allowed"),
        (["-J"], "-J is set by jobgate itself"),
        (["--hol"], "write the option in full (--hold)"),
        (["--nosuch"], "sbatch has no such option"),
    ]:
        with pytest.raises(ConfigError) as info:
            SlurmScheduler(Destination(name="x", scheduler="slurm", allowed_directives=names))
        assert info.value.field == "destinations.x.allowed_directives"
        assert says in info.value.message


# -- PBS ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flavor", "directive", "named"),
    [
        ("torque", "-N other", "-N"),
        ("torque", "-Nother", "-N"),
        ("torque", "-o /tmp/x", "-o"),
        ("torque", "-e/tmp/x", "-e"),
        ("torque", "-j oe", "-j"),
        ("pbspro", "-J 0-3", "-J"),
        ("pbspro", "-J0-3", "-J"),
        ("torque", "-t0-3", "-t"),
        ("torque", "-q big", "-q"),
        ("torque", "-A other", "-A"),
        ("torque", "-V", "-V"),
        ("torque", "-v LD_PRELOAD=/tmp/x.so", "-v"),
        ("torque", "-d /", "-d"),
        ("torque", "-S /bin/sh", "-S"),
        ("torque", "-z", "-z"),
        ("torque", "-l walltime=99:00:00", "-l walltime"),
        ("torque", "-lwalltime=99:00:00", "-l walltime"),
        ("torque", "-l pmem=1gb,walltime=99:00:00", "-l walltime"),
        ("torque", "-l cput=99:00:00", "-l cput"),  # the time limit on Slurm's wrappers
        ("torque", "-l nodes=8:ppn=32", "-l nodes"),
        ("torque", "-l mem=1tb", "-l mem"),
        ("torque", "-l nice=-10", "-l nice"),
        ("pbspro", "-l select=8:ncpus=32", "-l select"),
        ("pbspro", "-l place=excl", "-l place"),
        ("pbspro", "-l ngpus=8", "-l ngpus"),
    ],
)
def test_pbs_options_jobgate_sets_are_refused(
    flavor: Literal["pbspro", "torque"], directive: str, named: str
) -> None:
    err = refusal(PBSPRO if flavor == "pbspro" else TORQUE, "-m abe", directive)
    assert err.field == "resources.directives.1"
    assert err.message.startswith(f"{named} is set by jobgate itself"), err.message


@pytest.mark.parametrize(
    ("directive", "says"),
    [
        ("-h", "-h is not allowed on destination 'pbs'"),
        ("-W depend=afterok:1", "-W is not allowed"),
        ("--queue=big", "--queue: qsub has no such option"),
        ("-Y", "-Y: qsub has no such option"),
        ("-mabe -Nx", "one option per directive"),
        ("-p 2000", "a priority from -1024 to 1023"),
        ("-p -5", "attach a value that starts with '-'"),
        ("-r maybe", "y or n"),
        ("#PBS -N x", "without a directive prefix"),
    ],
)
def test_other_pbs_refusals_say_why(directive: str, says: str) -> None:
    err = refusal(TORQUE, directive)
    assert err.field == "resources.directives.0"
    assert says in err.message, err.message


def test_what_pbs_users_may_give_and_what_a_destination_adds() -> None:
    given = ["-m abe", "-mabe", "-M ops@example.org", "-p 10", "-p-5", "-r n", "-l pmem=1gb"]
    TORQUE.check(Resources(directives=[*given, "-l software=matlab,vmem=2gb"]))
    extra = PBSScheduler(Destination(name="pbs", scheduler="pbs", allowed_directives=["-h", "-W"]))
    extra.check(Resources(directives=["-h", "-W group_list=proj", "-W umask=077"]))
    assert "-h takes no value" in refusal(extra, "-h -Nx").message
    assert "-h takes no value" in refusal(extra, "-hNx").message  # a flag and -N bundled
    err = refusal(extra, "-W depend=afterok:1")
    assert err.message.startswith("-W depend is set by jobgate itself")
    with pytest.raises(ConfigError) as info:
        PBSScheduler(Destination(name="p", scheduler="pbs", allowed_directives=["-N"]))
    assert info.value.field == "destinations.p.allowed_directives"


# -- the table is sbatch's own ------------------------------------------------------------


needs_sbatch = pytest.mark.skipif(not shutil.which("sbatch"), reason="sbatch is not installed")


def _sbatch(*args: str) -> str:
    done = subprocess.run(
        ["sbatch", *args],
        check=False,  # the errors are what is read
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout + done.stderr


@needs_sbatch
def test_every_option_of_sbatch_help_is_in_the_table() -> None:
    table = SLURM_DIRECTIVES.table
    listed = re.findall(r"^ {2,6}(?:-(\w),? +)?--([a-z][a-z-]*)(\[?=)?", _sbatch("--help"), re.M)
    assert len(listed) > 80
    for letter, name, arg in listed:
        assert name in table.long, f"--{name} (sbatch --help) is not in SBATCH_TABLE"
        if letter:
            assert table.short[letter].name == f"--{name}", f"-{letter} is not --{name}"
        if arg == "=":  # "[=" may still be required: the help says --export[=names]
            assert table.long[name].arg == "=", f"--{name} takes a value"


@needs_sbatch
def test_the_table_is_sbatchs_whole_option_table() -> None:
    """getopt_long lists every option an ambiguous prefix could mean: one letter at a time,
    that is sbatch's whole table, undocumented options and aliases included (--test-only:
    nothing is ever submitted)."""
    ours = {name for name in SLURM_DIRECTIVES.table.long}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        text = _sbatch("--test-only", f"--{letter}")
        if "is ambiguous" in text:
            theirs = set(re.findall(r"'--([a-z][a-z-]*)'", text.split("possibilities:")[1]))
        elif "unrecognized option" in text:
            theirs = set()
        else:  # a prefix of one option: getopt names it when its value is missing
            theirs = set(re.findall(r"option '--([a-z][a-z-]*)' requires an argument", text))
            assert theirs, text
        assert {n for n in ours if n.startswith(letter)} == theirs, letter
    assert SBATCH_TABLE.count("--") == len(ours) - 2  # every entry, plus the two aliases
