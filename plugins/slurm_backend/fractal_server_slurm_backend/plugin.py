"""Entry point of the `slurm` backend."""
import shutil

from fractal_server.config.errors import FractalConfigurationError
from fractal_server.plugins import hookimpl
from fractal_server.runner.backend import RunnerBackend
from fractal_server_slurm_backend.config import check_slurm_config_file

DISTRIBUTION = "fractal-server-slurm-backend"
REQUIRED_COMMANDS = ("sbatch", "squeue")


def check_slurm_settings(settings) -> None:
    check_slurm_config_file(settings)
    for command in REQUIRED_COMMANDS:
        if shutil.which(command) is None:
            raise FractalConfigurationError(
                f"FRACTAL_RUNNER_BACKEND={settings.FRACTAL_RUNNER_BACKEND} "
                f"but `{command}` command not found."
            )


def create_slurm_runner(context):
    raise NotImplementedError(
        "Running jobs through SLURM is not available yet in this version of the "
        "slurm backend plugin."
    )


@hookimpl
def fractal_runner_backends():
    return [
        RunnerBackend(
            name="slurm",
            check_settings=check_slurm_settings,
            create_runner=create_slurm_runner,
            required_user_settings=("slurm_user", "project_dir", "slurm_accounts"),
            distribution=DISTRIBUTION,
        )
    ]
