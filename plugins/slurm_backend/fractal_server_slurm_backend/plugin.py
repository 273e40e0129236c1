"""Entry point of the `slurm` backend."""
import shutil

from fractal_server.config.errors import FractalConfigurationError
from fractal_server.plugins import hookimpl
from fractal_server.runner.backend import RunnerBackend, UserSettingsError
from fractal_server_slurm_backend.config import check_slurm_config_file, single_line
from fractal_server_slurm_backend.runner import SlurmRunner, user_side_dir
from fractal_server_slurm_backend.sudo import check_user_name

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


def check_job_folder_setting(name: str, value: str) -> None:
    """A user setting naming the folder of a user's job folders: it goes into scripts."""
    try:
        single_line(value)
    except ValueError as error:
        raise UserSettingsError(f"{name} {error}") from None
    if not value.startswith("/") or ".." in value.split("/"):
        raise UserSettingsError(f"{name}={value!r} must be an absolute path without '..'")


def check_slurm_user_settings(user_settings) -> None:
    """A slurm_user that can only be a user name, and a project_dir that can go into a script."""
    check_user_name(user_settings.slurm_user)
    check_job_folder_setting("project_dir", user_settings.project_dir)


@hookimpl
def fractal_runner_backends():
    return [
        RunnerBackend(
            name="slurm",
            check_settings=check_slurm_settings,
            create_runner=SlurmRunner,
            required_user_settings=("slurm_user", "project_dir", "slurm_accounts"),
            check_user_settings=check_slurm_user_settings,
            supports_stop=True,
            can_adopt=True,
            user_side_dir=user_side_dir,
            distribution=DISTRIBUTION,
        )
    ]
