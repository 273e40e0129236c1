"""Runner backend `slurm_ssh` (SLURM on a remote host, over SSH) for fractal-server."""
from setuptools import setup

setup(
    name="fractal-server-slurm-ssh-backend",
    version="2.9.2",
    description="Run Fractal jobs on a remote SLURM cluster over SSH",
    python_requires=">=3.10,<3.13",
    packages=["fractal_server_slurm_ssh_backend"],
    install_requires=["fractal-server==2.9.2", "fractal-server-slurm-backend==2.9.2", "paramiko>=3.2,<6"],
    entry_points={"fractal_server": ["slurm_ssh = fractal_server_slurm_ssh_backend.plugin"]},
)
