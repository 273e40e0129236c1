"""The `slurm_ssh` runner backend."""
