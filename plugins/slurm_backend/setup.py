"""Runner backend `slurm` (SLURM through sudo) for fractal-server."""
from setuptools import setup

setup(
    name="fractal-server-slurm-backend",
    version="2.9.2",
    description="Run Fractal jobs on a SLURM cluster, as each user through sudo",
    python_requires=">=3.10,<3.13",
    packages=["fractal_server_slurm_backend"],
    install_requires=["fractal-server==2.9.2"],
    entry_points={"fractal_server": ["slurm = fractal_server_slurm_backend.plugin"]},
)
