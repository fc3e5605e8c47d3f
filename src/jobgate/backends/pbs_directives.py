"""qsub's options (PBS Pro and Torque), as data, and which of them a job's `directives`
may give. PBS has no long options; `-l` is allowed for the resources jobgate does not
set itself. (Slurm's sbatch reads `#PBS` lines too, on the Torque wrappers: there `-l
cput=` becomes the time limit, so it counts as a walltime.)"""

from __future__ import annotations

from jobgate.backends.directives import DirectivePolicy, OptionTable

QSUB_TABLE = """
    -a= -A= -b= -c= -C= -d= -D= -e= -f -F= -h -I -j= -J= -k= -K= -l= -L= -m= -M= -n -N= -o=
    -p= -P= -q= -r= -R= -S= -t= -T= -u= -v= -V -W= -w= -x -X -z
"""

ALLOWED = frozenset({"-m", "-M", "-p", "-r", "-l"})

_FILES = "jobgate reads the job's output from the run directory (use stdin/stdout/stderr)"
_BOOKKEEPING = "jobgate relies on it to submit and find the job"
_ENVIRONMENT = "the job's environment is jobgate's to set (use environment)"
RESERVED = {
    "-N": "jobgate names the job (it finds jobs by name)",
    "-o": _FILES,
    "-e": _FILES,
    "-j": _FILES,
    "-k": _FILES,
    "-J": "set it with resources.array",
    "-t": "set it with resources.array",
    "-q": "set it with resources.partition",
    "-A": "set it with resources.account",
    "-n": "set it with resources.exclusive",
    "-L": "set it with resources (nodes, tasks, cpus_per_task, memory, gpus)",
    "-v": _ENVIRONMENT,
    "-V": _ENVIRONMENT,
    "-d": "set it with directory",
    "-D": "set it with directory",
    "-w": "set it with directory",
    "-S": "the job script is jobgate's (bash)",
    "-C": "the job script is jobgate's",
    "-F": "the job script is jobgate's",
    "-T": "the job script is jobgate's",
    "-u": "jobs run as the account that submits them",
    "-P": "jobs run as the account that submits them",
    "-I": _BOOKKEEPING,
    "-x": _BOOKKEEPING,
    "-X": _BOOKKEEPING,
    "-z": _BOOKKEEPING,
}

_WALLTIME = "set it with resources.walltime"
RESOURCES = {
    **dict.fromkeys(
        ["walltime", "soft_walltime", "min_walltime", "max_walltime", "cput", "pcput"], _WALLTIME
    ),
    **dict.fromkeys(
        ["select", "place", "nodes", "ppn", "ncpus", "mpiprocs", "ompthreads", "nodect"],
        "set it with resources (nodes, tasks, cpus_per_task, exclusive)",
    ),
    **dict.fromkeys(["ngpus", "gpus", "naccelerators"], "set it with resources.gpus"),
    "mem": "set it with resources.memory",
    "proc": "set it with resources.constraint",
    "nice": "use -p for the job's priority",
}
ATTRIBUTES = {  # of -W, where a destination allows it
    "depend": "dependencies between jobs are jobgate's",
    "block": _BOOKKEEPING,
    "stagein": "use input_files",
    "stageout": "use output_files",
    "sandbox": "set it with directory",
}

PBS_DIRECTIVES = DirectivePolicy(
    OptionTable("qsub", QSUB_TABLE),
    ALLOWED,
    RESERVED,
    reserved_keys={"-l": RESOURCES, "-W": ATTRIBUTES},
    values={
        "-p": (r"-1024|-?(?:10[01]\d|102[0-3]|\d{1,3})", "a priority from -1024 to 1023"),
        "-r": (r"[yn]", "y or n"),
    },
)
