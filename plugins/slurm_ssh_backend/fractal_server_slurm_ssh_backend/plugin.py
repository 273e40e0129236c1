"""Entry point of the `slurm_ssh` backend."""
import shutil
from functools import partial
from pathlib import PurePosixPath

from fractal_server.config.errors import FractalConfigurationError
from fractal_server.plugins import hookimpl
from fractal_server.runner.backend import RunnerBackend, UserSettingsError
from fractal_server_slurm_backend.config import check_slurm_config_file
from fractal_server_slurm_backend.plugin import check_job_folder_setting
from fractal_server_slurm_backend.runner import SlurmRunner
from fractal_server_slurm_ssh_backend.access import SSHAccess
from fractal_server_slurm_ssh_backend.address import parse_ssh_host
from fractal_server_slurm_ssh_backend.task_host import open_task_host

DISTRIBUTION = "fractal-server-slurm-ssh-backend"


def check_slurm_ssh_settings(settings) -> None:
    if settings.FRACTAL_SLURM_WORKER_PYTHON is None:
        raise FractalConfigurationError(
            "Must set FRACTAL_SLURM_WORKER_PYTHON when FRACTAL_RUNNER_BACKEND=slurm_ssh"
        )
    check_slurm_config_file(settings)
    if shutil.which("ssh") is None:
        raise FractalConfigurationError(
            "FRACTAL_RUNNER_BACKEND=slurm_ssh but `ssh` command not found."
        )


def check_ssh_user_settings(user_settings) -> None:
    try:
        parse_ssh_host(user_settings.ssh_host)
    except ValueError as error:
        raise UserSettingsError(str(error)) from None
    check_job_folder_setting("ssh_jobs_dir", user_settings.ssh_jobs_dir)


def remote_job_dir(user_settings, folder_name: str) -> str:
    """Where the calls of a job write on the remote host: `<ssh_jobs_dir>/<job folder>`."""
    return str(PurePosixPath(user_settings.ssh_jobs_dir) / folder_name)


@hookimpl
def fractal_runner_backends():
    return [
        RunnerBackend(
            name="slurm_ssh",
            check_settings=check_slurm_ssh_settings,
            create_runner=partial(SlurmRunner, access_class=SSHAccess),
            task_host=open_task_host,
            required_user_settings=(
                "ssh_host",
                "ssh_username",
                "ssh_private_key_path",
                "ssh_tasks_dir",
                "ssh_jobs_dir",
                "slurm_accounts",
            ),
            check_user_settings=check_ssh_user_settings,
            supports_stop=True,
            can_adopt=True,
            user_side_dir=remote_job_dir,
            distribution=DISTRIBUTION,
        )
    ]
