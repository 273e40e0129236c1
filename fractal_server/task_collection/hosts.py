"""Where task environments are built: this host, or one that a backend reaches.

Collection, deactivation and reactivation do every step through a
`TaskHost`: run a program, look at, write and remove files. For the local
backends (and `slurm`) that is this machine; a backend whose task
environments live elsewhere provides its own host with
`RunnerBackend.task_host` (e.g. `slurm_ssh`: the user's cluster over SSH).
Paths are POSIX paths on that host.
"""
import os
import shutil
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Optional

from flask import current_app

from fractal_server.db.models import User


class TaskHostError(Exception):
    """The host could not do what was asked; the message says why."""


class TaskHost(ABC):
    """The operations that build and remove task environments."""

    remote: bool
    """Whether this is another machine (the server cannot check its paths cheaply)."""
    base_dir: str
    """The folder of the task environments: `<base_dir>/<user id>/<package>/<version>`."""

    @abstractmethod
    def run(self, argv: list[str], timeout: Optional[float] = None) -> subprocess.CompletedProcess:
        """Run a program with its arguments (no shell) and return its exit status and output."""

    @abstractmethod
    def exists(self, path: str) -> bool:
        ...

    @abstractmethod
    def make_dirs(self, path: str) -> None:
        """Create a folder and its parents (no error if it exists)."""

    @abstractmethod
    def put_file(self, local: Path, path: str) -> None:
        """Copy a file of the server's machine to the host."""

    @abstractmethod
    def read_text(self, path: str) -> str:
        ...

    @abstractmethod
    def write_text(self, path: str, text: str) -> None:
        ...

    @abstractmethod
    def remove_folder(self, path: str) -> None:
        """Remove a folder and its content."""


def subprocess_environment() -> dict[str, str]:
    """The server's environment (pip configuration included), without what would leak into the venv."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


class LocalTaskHost(TaskHost):
    """This machine, under `FRACTAL_TASKS_DIR`."""

    remote = False

    def __init__(self, base_dir: str):
        self.base_dir = base_dir

    def run(self, argv: list[str], timeout: Optional[float] = None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                argv,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                cwd="/",
                env=subprocess_environment(),
                timeout=timeout,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise TaskHostError(f"Cannot run {argv[0]}: {error}") from None

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def make_dirs(self, path: str) -> None:
        self._do(os.makedirs, path, exist_ok=True)

    def put_file(self, local: Path, path: str) -> None:
        self._do(shutil.copyfile, local, path)

    def read_text(self, path: str) -> str:
        return self._do(Path(path).read_text)

    def write_text(self, path: str, text: str) -> None:
        self._do(Path(path).write_text, text)

    def remove_folder(self, path: str) -> None:
        self._do(shutil.rmtree, path)

    @staticmethod
    def _do(operation, *args, **kwargs):
        try:
            return operation(*args, **kwargs)
        except (OSError, UnicodeDecodeError) as error:
            raise TaskHostError(str(error)) from None


def task_host_for(user: User) -> TaskHost:
    """The host of `user`'s task environments, as the backend says (not connected yet)."""
    # As `runner.job` does: the module of `server_state()` imports the job executor, which imports this one.
    state = current_app.extensions["fractal"]
    if state.backend.task_host is None:
        return LocalTaskHost(str(state.settings.FRACTAL_TASKS_DIR))
    return state.backend.task_host(state.settings, user.settings)
