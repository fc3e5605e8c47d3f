#!/bin/bash
# jobgate job 01JOBGATE0000000000000TEST (Slurm). Generated: edits are overwritten.
#SBATCH --job-name=jobgate-01JOBGATE0000000000000TEST
#SBATCH --output=/runs/01JOBGATE0000000000000TEST/jobgate-%a.log
#SBATCH --export=ALL
#SBATCH --partition=debug
#SBATCH --time=00:01:30
#SBATCH --array=0-99%10
export SLURM_EXPORT_ENV=ALL
jobgate_task=${SLURM_ARRAY_TASK_ID:?not an array task}
jobgate_task_dir=/runs/01JOBGATE0000000000000TEST/tasks/"$jobgate_task"
mkdir -p "$jobgate_task_dir" || exit 1
ln -sfn ../../script.sh "$jobgate_task_dir/script.sh"
sed "s/@TASK@/$jobgate_task/g" /runs/01JOBGATE0000000000000TEST/task.sh.in > "$jobgate_task_dir/jobgate.sh" || exit 1
exec /bin/bash "$jobgate_task_dir/jobgate.sh"
