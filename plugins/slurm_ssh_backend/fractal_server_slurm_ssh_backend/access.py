"""The user's SSH account on a SLURM login node, as the `ClusterAccess` of `SlurmRunner`.

Commands run over the process's shared connection to the user's target
(`pool`). `squeue` runs as that account too: one poller per target serves
every job that reaches the cluster through it. The user-side job folder is
`<ssh_jobs_dir>/<job folder>` on the remote host, and `user_local_exports`
are relative to it. Each command is logged at DEBUG level with the bytes
it moved (one line per SSH round trip, for admins and benchmarks).
"""
import logging
import subprocess
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Optional

from fractal_server.runner.backend import Handle, JobContext
from fractal_server_slurm_backend.access import ClusterAccess, ClusterError, ClusterUnreachable
from fractal_server_slurm_backend.squeue import SlurmJobStates, shared_job_states

from fractal_server_slurm_ssh_backend.connection import SSHError, SSHTarget, SSHUnreachable
from fractal_server_slurm_ssh_backend.pool import known_hosts_file, shared_connection, target_of

logger = logging.getLogger(__name__)


class SSHAccess(ClusterAccess):
    runs_pre_submission_commands = True

    def __init__(self, target: SSHTarget, exports_base: str = ""):
        self.target = target
        self.connection = shared_connection(target)
        self.exports_base = exports_base
        self.description = str(target)

    @classmethod
    def for_job(cls, context: JobContext) -> "SSHAccess":
        return cls(target_of(context.settings, context.user_settings), context.working_dir_user)

    @classmethod
    def from_handle(cls, context: JobContext, handle: Handle) -> "SSHAccess":
        ssh = handle["ssh"]
        target = SSHTarget(ssh["host"], ssh["port"], ssh["user"], ssh["key_path"], known_hosts_file(context.settings))
        return cls(target)

    def handle_fields(self) -> dict:
        target = self.target
        return {"ssh": {"host": target.host, "port": target.port, "user": target.user, "key_path": target.key_path}}

    def run(
        self, argv: Sequence[str], *, stdin: Optional[bytes] = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        with _as_cluster_errors():
            result = self.connection.run(list(argv), check=check, stdin=stdin, text=False)
        self._log(argv, stdin, result.stdout)
        return result

    def job_states(self, interval: float, outage_limit: float) -> SlurmJobStates:
        return shared_job_states(("ssh", self.target), interval, outage_limit, self._squeue)

    def _squeue(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        with _as_cluster_errors():
            result = self.connection.run(argv, timeout=timeout, check=False)
        self._log(argv, None, result.stdout)
        return result

    def _log(self, argv: Sequence[str], sent: Optional[bytes], received) -> None:
        logger.debug(f"ssh {self.description}: {argv[0]} (sent {len(sent or b'')} B, received {len(received)} B)")


@contextmanager
def _as_cluster_errors():
    try:
        yield
    except SSHUnreachable as error:
        raise ClusterUnreachable(str(error)) from None
    except SSHError as error:
        raise ClusterError(str(error)) from None
