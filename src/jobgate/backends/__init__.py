"""Backends: where a job runs. A scheduler (local, slurm, pbs, ssh) over a transport."""
