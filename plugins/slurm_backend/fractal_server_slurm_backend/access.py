"""How a SLURM backend reaches the side where a user's SLURM jobs run.

The `slurm` backend runs commands as the user's `slurm_user` through sudo on
the server's own machine (`sudo.SudoAccess`); `slurm_ssh` runs them as the
user's SSH account on a login node. Everything else (scripts, batching,
polling, outcomes) is the same `SlurmRunner`, which only ever asks a
`ClusterAccess` to run a command (an argument list, never a shell line) and
to say where it leads.
"""

import subprocess
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

from fractal_server.runner.backend import Handle, JobContext

if TYPE_CHECKING:
    from fractal_server_slurm_backend.squeue import SlurmJobStates


class ClusterError(RuntimeError):
    """A command on the cluster side could not run or failed; the message says where and why."""


class ClusterUnreachable(ClusterError):
    """The cluster side could not be reached at all (an outage, not a failing command)."""


class ClusterAccess(ABC):
    """Commands as the user on the cluster side; made for a job (`for_job`) or from a stored handle."""

    description: str
    """Who and where, for messages: e.g. `user alice (sudo)`, `alice@login:22`."""
    exports_base: str
    """Folder that the paths of `user_local_exports` are relative to (known to accesses made `for_job`)."""
    runs_pre_submission_commands: bool = False
    """Whether the configuration's `pre_submission_commands` run before `sbatch` (else: ignored, with a warning)."""

    @classmethod
    @abstractmethod
    def for_job(cls, context: JobContext) -> "ClusterAccess":
        """The access of the job's user, from their settings (raises UserSettingsError if they do not allow it)."""

    @classmethod
    @abstractmethod
    def from_handle(cls, context: JobContext, handle: Handle) -> "ClusterAccess":
        """The access that submitted `handle` (the user's settings may have changed since)."""

    @abstractmethod
    def handle_fields(self) -> dict:
        """What `from_handle` needs, stored in every handle."""

    @abstractmethod
    def run(
        self, argv: Sequence[str], *, stdin: Optional[bytes] = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        """Run `argv` as the user, bytes in and out; with `check`, a non-zero exit raises ClusterError."""

    @abstractmethod
    def job_states(self, interval: float, outage_limit: float) -> "SlurmJobStates":
        """The shared `squeue` poller that sees this user's SLURM jobs."""


def describe_failure(where: str, argv: Sequence[str], result: subprocess.CompletedProcess) -> str:
    return (
        f"Command {' '.join(argv)!r} as {where} failed with exit status {result.returncode}.\n"
        f"stdout: {_text(result.stdout)}\nstderr: {_text(result.stderr)}"
    )


def _text(output) -> str:
    return (output.decode(errors="replace") if isinstance(output, bytes) else output or "").strip()
