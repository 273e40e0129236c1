"""The interface between the core runner and the runner backends.

The core owns the workflow semantics (image selection, arguments, merging of
outputs, history, logs). A backend only runs task calls: each call is a
command plus files named after the call's prefix inside its task folder of
the job folder:

    <working_dir>/<subfolder>/<prefix>.args.json      written by the core
    <working_dir>/<subfolder>/<prefix>.metadiff.json  written by the task
    <working_dir>/<subfolder>/<prefix>.log            stdout and stderr
    <working_dir>/<subfolder>/<prefix>.status.json    how the call ended (the call wrapper)

A backend runs the calls of one phase of a task (one call, or the parallel
calls of a task) without blocking: `submit` starts them and returns a
handle, a JSON object that the core stores in the database; `poll` tells
whether they have all ended; `cancel` stops them. Any server process can
poll or cancel a stored handle, not only the one that submitted it: that is
how a job survives a restart of the server (the new process adopts it).
When `poll` reports the outcomes, the output, log and status files of the
calls are back in the server-side folder. Where the files live in between
(a user-side folder, a remote host) and how calls are grouped (one SLURM job
for many calls) is the backend's business.

Each call runs through the call wrapper (`fractal_server.runner.call_wrapper`,
a standalone script), which records the call's end in its status file, so
that whoever polls learns how the call ended without being its parent.
"""
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
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
    task_name: str = ""
    """Name of the task, for the backend's own labels (e.g. SLURM job names)."""

    def args_file(self, root: Path) -> Path:
        return root / self.subfolder / f"{self.prefix}.args.json"

    def out_file(self, root: Path) -> Path:
        return root / self.subfolder / f"{self.prefix}.metadiff.json"

    def log_file(self, root: Path) -> Path:
        return root / self.subfolder / f"{self.prefix}.log"

    def status_file(self, root: Path) -> Path:
        return root / self.subfolder / f"{self.prefix}.status.json"


class CallStatus(str, Enum):
    """How a call ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """Exit status other than 0 (`returncode`), or the command could not start (`returncode` None)."""
    TIMED_OUT = "timed_out"
    """Killed for exceeding its time limit."""
    OUT_OF_MEMORY = "out_of_memory"
    """Killed for exceeding its memory limit."""
    CANCELLED = "cancelled"
    """Cancelled by a stop request, or by someone outside Fractal."""
    LOST = "lost"
    """Vanished without a trace: no status file, and nothing else tells how it ended."""


@dataclass(frozen=True)
class CallOutcome:
    """What happened to one call."""

    status: CallStatus
    returncode: Optional[int] = None
    """Exit status; negative: killed by that signal; None: unknown, or it never started."""
    detail: str = ""
    """What the backend knows beyond the status: why a call could not start,
    what the cluster said, the likely causes of a loss."""
    sections: tuple[tuple[str, str], ...] = ()
    """Extra files for the job report, as (title, content): e.g. the
    submission script (`COMMAND`), the batch job's `STDOUT` and `STDERR`."""

    @classmethod
    def from_returncode(cls, returncode: int) -> "CallOutcome":
        return cls(CallStatus.SUCCEEDED if returncode == 0 else CallStatus.FAILED, returncode)


@dataclass(frozen=True)
class JobContext:
    """Everything a backend may need to know about the job it runs."""

    job_id: int
    working_dir: Path
    """Server-side job folder."""
    working_dir_user: str
    """Job folder as seen by the task processes (user side, maybe remote)."""
    settings: Any
    """The server settings (`fractal_server.config.settings.Settings`)."""
    user_settings: Any
    """The settings of the job's owner (`fractal_server.db.models.UserSettings`), detached from the database."""
    slurm_account: Optional[str]
    worker_init: Optional[str]
    logger_name: str
    """Name of the job's logger (its lines go to `workflow.log`)."""


Handle = dict
"""What `JobRunner.submit` returns: JSON-serialisable, stored by the core."""


class JobRunner(ABC):
    """Runs the calls of one job; created by `RunnerBackend.create_runner`.

    A runner may be created in a process other than the one that submitted
    a handle, with an equal `JobContext`; it must then poll and cancel that
    handle as well.
    """

    poll_interval: float = 1.0
    """Seconds the core waits between two polls of a running phase."""
    stopped_message: str = "Job stopped."
    """The job report's additional info when a stop request cancelled the job."""

    @abstractmethod
    def submit(self, calls: Sequence[TaskCall]) -> Handle:
        """Start the calls (possibly concurrently) and return at once.

        A list of more than one call is the parallel part of a task: the
        calls are independent and may be batched. The arguments files exist
        server-side.
        """

    @abstractmethod
    def poll(self, calls: Sequence[TaskCall], handle: Handle) -> Optional[list[CallOutcome]]:
        """None while a call may still run; else the outcomes, in the order of `calls`.

        `calls` are those given to `submit`. Transient trouble (a cluster
        that does not answer for a while) is the backend's to ride out:
        return None, and raise only when it cannot go on.
        """

    @abstractmethod
    def cancel(self, calls: Sequence[TaskCall], handle: Handle) -> None:
        """Stop the calls of `handle` wherever they run (no orphan keeps writing data)."""

    def run(self, calls: Sequence[TaskCall]) -> list[CallOutcome]:
        """Submit and wait: a blocking convenience for scripts and tests."""
        handle = self.submit(calls)
        while (outcomes := self.poll(calls, handle)) is None:
            time.sleep(self.poll_interval)
        return outcomes

    def close(self) -> None:
        """Release resources; called once when this process is done with the job."""


class UserSettingsError(ValueError):
    """The job owner's settings do not fit the backend; the message says why."""


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
    check_user_settings: Optional[Callable[[Any], None]] = None
    """Further checks of a user's settings (e.g. a valid user name), raising
    `UserSettingsError`; run after the required ones are known to be set."""
    supports_stop: bool = True
    """Whether jobs can be stopped on request (the stop endpoint answers 422 otherwise)."""
    can_adopt: bool = True
    """Whether another server process can poll and cancel a submitted handle.
    When it cannot, a job whose server process died or stopped has its calls
    cancelled and fails, saying why."""
    user_side_dir: Optional[Callable[[Any, str], str]] = None
    """Given the user's settings and the job folder's name, the job folder as the
    task processes see it; None means the server-side folder itself."""
    task_host: Optional[Callable[[Any, Any], Any]] = None
    """Given the server settings and a user's settings, a connection to the
    host where that user's task environments are built; None means this host."""
    distribution: str = ""
    """Name of the distribution that ships the backend, for messages."""
