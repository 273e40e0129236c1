"""Runner backends `local` and `local_experimental` for fractal-server."""
from setuptools import setup

setup(
    name="fractal-server-local-backend",
    version="2.9.2",
    description="Run Fractal jobs on the server's own machine",
    python_requires=">=3.10,<3.13",
    packages=["fractal_server_local_backend"],
    install_requires=["fractal-server==2.9.2"],
    entry_points={"fractal_server": ["local = fractal_server_local_backend.plugin"]},
)
