#!/bin/bash
# jobgate job 01JOBGATE0000000000000TEST (Slurm). Generated: edits are overwritten.
#SBATCH --job-name=jobgate-01JOBGATE0000000000000TEST
#SBATCH --output=/runs/01JOBGATE0000000000000TEST/jobgate.log
#SBATCH --export=ALL
#SBATCH --partition=debug
export SLURM_EXPORT_ENV=ALL
jobgate_dir=/runs/01JOBGATE0000000000000TEST
{ read -r jobgate_host < /proc/sys/kernel/hostname; } 2>/dev/null || jobgate_host=$(hostname)
printf '%s\n' "$jobgate_host" > "$jobgate_dir/HOSTNAME"
printf '%s\n' "${EPOCHREALTIME:-}" > "$jobgate_dir/job.started"
export PATH=/opt/site/bin:/usr/bin:/bin
export HOME=/home/alice
export USER=alice
export LANG=en_GB.UTF-8
export TMPDIR=/tmp
export SHELL=/bin/bash
export JOBGATE_JOB_ID=01JOBGATE0000000000000TEST
export JOBGATE_RUN_DIR=/runs/01JOBGATE0000000000000TEST
export JOBGATE_EVENTS=/runs/01JOBGATE0000000000000TEST/jobgate.events
jobgate_end() {
  printf '%s\n' "$1" > "$jobgate_dir/exitcode.tmp" && mv -f "$jobgate_dir/exitcode.tmp" /runs/01JOBGATE0000000000000TEST/exitcode
  exit "$1"
}
# A TERM for the job (cancel, walltime) reaches the command too; bash runs this trap only
# after the command has ended, so the wrapper stays to record the command's code.
trap ':' TERM INT HUP
cd /runs/01JOBGATE0000000000000TEST/work || jobgate_end 126
/bin/echo 'a b' 'it'"'"'s $(touch /tmp/pwned) `id` "quoted" ; rm -rf ~ \ end' < /runs/01JOBGATE0000000000000TEST/work/in.txt > /runs/01JOBGATE0000000000000TEST/work/out.txt 2> /runs/01JOBGATE0000000000000TEST/stderr
jobgate_end "$?"
