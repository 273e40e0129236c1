"""The `slurm` runner backend, and the SLURM pieces `slurm_ssh` reuses."""
