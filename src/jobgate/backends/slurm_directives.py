"""sbatch's options, as data, and which of them a job's `directives` may give.

The table is sbatch 22.05's own (getopt_long's, which a `--prefix` resolves against): the
options of `man sbatch`, plus the two aliases and two options it does not document, as
`sbatch --test-only --<letter>` lists them. tests/unit/test_directives.py checks it against
the installed sbatch.
"""

from __future__ import annotations

from jobgate.backends.directives import DirectivePolicy, OptionTable

SBATCH_TABLE = """
    -A --account=           --acctg-freq=           -a --array=             --batch=
    --bb=                   --bbf=                  -b --begin=             -D --chdir=
    --cluster-constraint=   -M --clusters=          --comment=              -C --constraint=
    --container=            --context=              --contiguous            -S --core-spec=
    --cores-per-socket=     --cpu-freq=             --cpus-per-gpu=         -c --cpus-per-task=
    --deadline=             --delay-boot=           -d --dependency=        -m --distribution=
    -e --error=             -x --exclude=           --exclusive[=]          --export=
    --export-file=          -B --extra-node-info=   --get-user-env[=]       --gid=
    --gpu-bind=             --gpu-freq=             -G --gpus=              --gpus-per-node=
    --gpus-per-socket=      --gpus-per-task=        --gres=                 --gres-flags=
    -h --help               --hint=                 -H --hold               --ignore-pbs
    -i --input=             -J --job-name=          --kill-on-invalid-dep=  -L --licenses=
    --mail-type=            --mail-user=            --mcs-label=            --mem=
    --mem-bind=             --mem-per-cpu=          --mem-per-gpu=          --mincpus=
    --network=              --nice[=]               -k --no-kill[=]         --no-requeue
    -F --nodefile=          -w --nodelist=          -N --nodes=             -n --ntasks=
    --ntasks-per-core=      --ntasks-per-gpu=       --ntasks-per-node=      --ntasks-per-socket=
    --ntasks-per-tres=      --open-mode=            -o --output=            -O --overcommit
    -s --oversubscribe      --parsable              -p --partition=         --power=
    --prefer=               --priority=             --profile=              --propagate[=]
    -q --qos=               -Q --quiet              --reboot                --requeue
    --reservation=          --signal=               --sockets-per-node=     --spread-job
    --switches=             --test-only             --thread-spec=          --threads-per-core=
    -t --time=              --time-min=             --tmp=                  --uid=
    --usage                 --use-min-nodes         -v --verbose            -V --version
    -W --wait               --wait-all-nodes=       --wckey=                --wrap=
"""
SBATCH_ALIASES = {"cluster": "clusters", "tasks-per-node": "ntasks-per-node"}

# What any Slurm job may give: placement and notification details jobgate has no field for.
ALLOWED = OptionTable.names(
    """
    --mail-type --mail-user --mem-per-cpu --mem-per-gpu --cpus-per-gpu --gpus-per-node
    --gpus-per-socket --gpus-per-task --gres-flags --ntasks-per-node --ntasks-per-core
    --ntasks-per-socket --ntasks-per-gpu --licenses --signal --nice --hint --distribution
    --exclude --nodelist --requeue --no-requeue --switches --core-spec --thread-spec
    --threads-per-core --cores-per-socket --sockets-per-node --extra-node-info --mem-bind
    --gpu-bind --cpu-freq --gpu-freq --no-kill --oversubscribe --spread-job --use-min-nodes
    --contiguous --mincpus --tmp --prefer --profile --acctg-freq
    """
)

_RESOURCES = "set it with resources.{}"
_FILES = "jobgate reads the job's output from the run directory (use stdin/stdout/stderr)"
_BOOKKEEPING = "jobgate relies on it to submit and find the job"
# Never allowed, not even by a destination, and what to use instead.
RESERVED = {
    **{
        f"--{option}": _RESOURCES.format(field)
        for option, field in [
            ("time", "walltime"),
            ("time-min", "walltime"),
            ("partition", "partition"),
            ("account", "account"),
            ("qos", "qos"),
            ("nodes", "nodes"),
            ("ntasks", "tasks"),
            ("cpus-per-task", "cpus_per_task"),
            ("mem", "memory"),
            ("gres", "gpus"),
            ("gpus", "gpus"),
            ("constraint", "constraint"),
            ("reservation", "reservation"),
            ("exclusive", "exclusive"),
            ("array", "array"),
        ]
    },
    "--job-name": "jobgate names the job (it finds jobs by name; your name goes to --comment)",
    "--comment": "set it with the job's name",
    "--output": _FILES,
    "--error": _FILES,
    "--input": _FILES,
    "--open-mode": _FILES,
    "--chdir": "set it with directory",
    "--export": "the job's environment is jobgate's to set (use environment)",
    "--export-file": "the job's environment is jobgate's to set (use environment)",
    "--get-user-env": "the job's environment is jobgate's to set (use environment)",
    "--dependency": "dependencies between jobs are jobgate's",
    "--kill-on-invalid-dep": "dependencies between jobs are jobgate's",
    "--parsable": _BOOKKEEPING,
    "--wrap": _BOOKKEEPING,
    "--wait": _BOOKKEEPING,
    "--test-only": _BOOKKEEPING,
    "--clusters": _BOOKKEEPING,
    "--quiet": _BOOKKEEPING,
    "--verbose": _BOOKKEEPING,
    "--help": _BOOKKEEPING,
    "--usage": _BOOKKEEPING,
    "--version": _BOOKKEEPING,
    "--ignore-pbs": _BOOKKEEPING,
    "--uid": "jobs run as the account that submits them",
    "--gid": "jobs run as the account that submits them",
    "--nodefile": "it reads a file on the gateway's host (use --nodelist)",
    "--bbf": "it reads a file on the gateway's host (use --bb)",
}

SLURM_DIRECTIVES = DirectivePolicy(
    OptionTable("sbatch", SBATCH_TABLE, SBATCH_ALIASES),
    ALLOWED,
    RESERVED,
    values={"--nice": (r"\d+", "a nice value only lowers the job's priority (0 or more)")},
)
