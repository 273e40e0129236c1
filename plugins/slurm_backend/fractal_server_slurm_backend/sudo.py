"""Commands run as a user's SLURM account, through the service account's sudo rule.

Every command is an argument list (never a shell line), run as
`sudo --set-home --non-interactive -u <slurm_user> <argv...>`; the user name
is checked first, so that it can only be a user name. `squeue` runs as the
service account itself: it sees every user's jobs, so one poller serves them all.
"""

import re
import subprocess
from collections.abc import Sequence
from typing import Optional

from fractal_server.runner.backend import Handle, JobContext, UserSettingsError
from fractal_server.runner.errors import JobExecutionError

from fractal_server_slurm_backend.access import ClusterAccess, ClusterError, describe_failure
from fractal_server_slurm_backend.squeue import SlurmJobStates, shared_job_states

_USER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
TIMEOUT = 300
"""Seconds any one command may take; SLURM commands answer in far less."""
CACHE_FOLDER = ".fractal_cache"


def check_user_name(name: str) -> str:
    """A POSIX-like user name: no option, no `#uid`, nothing a shell would read."""
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
        raise UserSettingsError(f"slurm_user={name!r} is not a valid user name")
    return name


class SudoAccess(ClusterAccess):
    """The job's `slurm_user` on this machine; job files under `<project_dir>/.fractal_cache`."""

    def __init__(self, user: str, exports_base: str):
        self.user = check_user_name(user)
        self.exports_base = exports_base
        self.description = f"user {user} (sudo)"

    @classmethod
    def for_job(cls, context: JobContext) -> "SudoAccess":
        user_settings = context.user_settings
        if user_settings is None or not user_settings.slurm_user:
            raise JobExecutionError(info="The job's user has no slurm_user: its calls cannot be submitted.")
        return cls(user_settings.slurm_user, f"{user_settings.project_dir}/{CACHE_FOLDER}")

    @classmethod
    def from_handle(cls, context: JobContext, handle: Handle) -> "SudoAccess":
        return cls(handle["slurm_user"], "")

    def handle_fields(self) -> dict:
        return {"slurm_user": self.user}

    def run(
        self, argv: Sequence[str], *, stdin: Optional[bytes] = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        """Run from `/`, a folder every account can enter."""
        try:
            result = subprocess.run(
                ["sudo", "--set-home", "--non-interactive", "-u", self.user, *argv],
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                capture_output=True,
                cwd="/",
                timeout=TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ClusterError(f"Command {' '.join(argv)!r} as {self.description} could not run: {error}") from None
        if check and result.returncode != 0:
            raise ClusterError(describe_failure(self.description, argv, result))
        return result

    def job_states(self, interval: float, outage_limit: float) -> SlurmJobStates:
        return shared_job_states("sudo", interval, outage_limit)
