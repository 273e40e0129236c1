"""The interface between the core runner and the runner backends.

The core owns the workflow semantics (image selection, arguments, merging of
outputs, history, logs). A backend only runs task calls: each call is a
shell command plus three files, named after the call's prefix inside its
task folder of the job folder:

    <working_dir>/<subfolder>/<prefix>.args.json      written by the core
    <working_dir>/<subfolder>/<prefix>.metadiff.json  written by the task
    <working_dir>/<subfolder>/<prefix>.log            stdout and stderr

The core writes the arguments file on the server side before calling
`JobRunner.run`; when `run` returns, the output and log files of every call
that ran must be back on the server side. Where the files live in between
(a user-side folder, a remote host reached over SSH) and how calls are
grouped (one SLURM job for many calls) is the backend's business.
"""
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


@dataclass(frozen=True)
class TaskCall:
    """One execution of a task command."""

    subfolder: str
    """Folder of the workflow task inside the job folder, e.g. `1_measure`."""
    prefix: str
    """Stem of the call's files, e.g. `1` or `1_par_0000042`."""
    command: str
    """The task command; the backend appends `--args-json` and `--out-json`."""
    meta: dict = field(default_factory=dict)
    """Resource needs of the workflow task (`cpus_per_task`, `mem`, ...)."""

    def args_file(self, root: Path) -> Path:
        return root / self.subfolder / f"{self.prefix}.args.json"

    def out_file(self, root: Path) -> Path:
        return root / self.subfolder / f"{self.prefix}.metadiff.json"

    def log_file(self, root: Path) -> Path:
        return root / self.subfolder / f"{self.prefix}.log"


@dataclass(frozen=True)
class CallOutcome:
    """What happened to one call."""

    returncode: Optional[int]
    """Exit status of the task process; None if it could not start."""
    error: Optional[str] = None
    """Why the call could not start, or why it was stopped."""
    stopped: bool = False
    """The call was stopped (or never started) because the job was stopped."""


@dataclass(frozen=True)
class JobContext:
    """Everything a backend may need to know about the job it runs."""

    job_id: int
    working_dir: Path
    """Server-side job folder."""
    working_dir_user: str
    """Job folder as seen by the task processes (user side, maybe remote)."""
    settings: Any
    user_settings: Any
    slurm_account: Optional[str]
    worker_init: Optional[str]
    logger_name: str


class JobRunner(ABC):
    """Runs the calls of one job; created by `RunnerBackend.create_runner`."""

    @abstractmethod
    def run(self, calls: Sequence[TaskCall]) -> list[CallOutcome]:
        """Run the calls (possibly concurrently) and wait for all of them.

        A list of more than one call is the parallel part of a task: the
        calls are independent and may be batched. Outcomes are returned in
        the order of `calls`.
        """

    def stop(self) -> None:
        """Ask the running calls to stop as soon as possible."""

    def close(self) -> None:
        """Release resources; called once when the job ends."""


@dataclass(frozen=True)
class RunnerBackend:
    """A runner backend, as returned by the `fractal_runner_backends` hook."""

    name: str
    """The value of `FRACTAL_RUNNER_BACKEND` that selects this backend."""
    check_settings: Callable[[Any], None]
    """Start-up check of the server settings; raises FractalConfigurationError."""
    create_runner: Callable[[JobContext], JobRunner]
    required_user_settings: tuple[str, ...] = ()
    """User settings a job or a collection needs with this backend."""
    supports_stop: bool = True
    """Whether jobs can be stopped on request (the stop endpoint answers 422 otherwise)."""
    user_side_dir: Optional[Callable[[Any, str], str]] = None
    """Given the user's settings and the job folder's name, the job folder as the
    task processes see it; None means the server-side folder itself."""
    distribution: str = ""
    """Name of the distribution that ships the backend, for messages."""
