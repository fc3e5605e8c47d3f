#!/bin/bash
# jobgate job 01JOBGATE0000000000000TEST (PBS). Generated: edits are overwritten.
#PBS -N jobgate-01JOBGATE0000000000000TEST
#PBS -j oe
#PBS -o /runs/01JOBGATE0000000000000TEST/jobgate.log
#PBS -l walltime=00:00:30
#PBS -J 0-9%2
jobgate_task=${PBS_ARRAY_INDEX:-${PBS_ARRAYID:-${SLURM_ARRAY_TASK_ID:?not an array task}}}
jobgate_task_dir=/runs/01JOBGATE0000000000000TEST/tasks/"$jobgate_task"
mkdir -p "$jobgate_task_dir" || exit 1
sed "s/@TASK@/$jobgate_task/g" /runs/01JOBGATE0000000000000TEST/task.sh.in > "$jobgate_task_dir/jobgate.sh" || exit 1
exec /bin/bash "$jobgate_task_dir/jobgate.sh"
