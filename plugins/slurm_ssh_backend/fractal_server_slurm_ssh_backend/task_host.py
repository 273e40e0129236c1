"""Task environments on the user's cluster: the `TaskHost` of `slurm_ssh`, over the shared SSH connection."""
import subprocess
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Optional

from fractal_server.task_collection.hosts import TaskHost, TaskHostError

from fractal_server_slurm_ssh_backend.connection import SSHConnection, SSHError
from fractal_server_slurm_ssh_backend.pool import shared_connection, target_of

STEP_TIMEOUT = 3600.0
"""Seconds a collection step may run remotely (a `pip install` of a large package takes long)."""


@contextmanager
def _as_task_host_errors():
    try:
        yield
    except SSHError as error:
        raise TaskHostError(str(error)) from None


class SSHTaskHost(TaskHost):
    """The remote host of a user's SSH settings; environments under the user's `ssh_tasks_dir`."""

    remote = True

    def __init__(self, connection: SSHConnection, base_dir: str):
        self.connection = connection
        self.base_dir = base_dir

    def run(self, argv: list[str], timeout: Optional[float] = None) -> subprocess.CompletedProcess:
        with _as_task_host_errors():
            return self.connection.run(argv, timeout=timeout or STEP_TIMEOUT, check=False)

    def exists(self, path: str) -> bool:
        with _as_task_host_errors():
            return self.connection.exists(path)

    def make_dirs(self, path: str) -> None:
        with _as_task_host_errors():
            self.connection.make_dirs(path)

    def put_file(self, local: Path, path: str) -> None:
        with _as_task_host_errors():
            self.connection.put_file(local, path)

    def read_text(self, path: str) -> str:
        with _as_task_host_errors():
            return self.connection.read_text(path)

    def write_text(self, path: str, text: str) -> None:
        with _as_task_host_errors():
            self.connection.write_text(path, text)

    def remove_folder(self, path: str) -> None:
        """Only inside `ssh_tasks_dir`: a wrong path in the database must not remove other folders of the user."""
        target, base = PurePosixPath(path), PurePosixPath(self.base_dir)
        if ".." in target.parts or target == base or not target.is_relative_to(base):
            raise TaskHostError(f"Not removing {path}: it is not inside ssh_tasks_dir={self.base_dir}.")
        with _as_task_host_errors():
            self.connection.remove_folder(path)


def open_task_host(settings, user_settings) -> SSHTaskHost:
    """`RunnerBackend.task_host` of `slurm_ssh` (connects on first use)."""
    return SSHTaskHost(shared_connection(target_of(settings, user_settings)), user_settings.ssh_tasks_dir)
