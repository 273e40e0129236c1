"""The states of this server process's SLURM jobs, from one `squeue` per poll interval.

All the runners of a process (one per running Fractal job) that reach the
cluster the same way ask the same `SlurmJobStates`: it runs `squeue` for
every job any of them watches at most once per interval, however many jobs
there are, and answers from what it learnt. With `slurm`, `squeue` runs as
the service account (it lists every user's jobs): one poller per process;
with `slurm_ssh`, one per SSH connection.

A job that `squeue` no longer lists is `GONE`: SLURM forgets finished jobs
(`MinJobAge`), and answers "Invalid job id specified" when it knows none of
the ids asked. So a purged job never looks as if it were still running. When
`squeue` itself fails (the controller does not answer) the states are not
known and the jobs are waited for, for at most the outage limit
(`FRACTAL_SLURM_OUTAGE_LIMIT`) from the first failing `squeue`; then they are
taken as gone, and what their files say decides.
"""

import subprocess
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Optional

from fractal_server_slurm_backend.access import ClusterError

RunSqueue = Callable[[list[str], float], subprocess.CompletedProcess]
"""Runs an `squeue` argument list with a timeout; text output; raises OSError,
TimeoutExpired or ClusterError when it could not run."""

FINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "SPECIAL_EXIT",
        "TIMEOUT",
    }
)
GONE = "GONE"
"""No longer listed by `squeue` (purged, or never known): the job has ended."""
_INVALID_JOB_ID = "Invalid job id specified"


def has_ended(state: Optional[str]) -> bool:
    return state == GONE or state in FINAL_STATES


def run_squeue_here(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    """`squeue` as the server's own account."""
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)


class SlurmJobStates:
    def __init__(self, interval: float, outage_limit: float = 600, run_squeue: RunSqueue = run_squeue_here):
        self.interval = interval
        self.outage_limit = outage_limit
        """Seconds of failing `squeue` after which the watched jobs are taken as gone."""
        self.run_squeue = run_squeue
        self.last_error = ""
        """What `squeue` said when it last failed ("" after an answer)."""
        self._lock = threading.Lock()
        self._watched: set[str] = set()
        self._states: dict[str, str] = {}
        self._refreshed_at = float("-inf")
        self.failing_since: Optional[float] = None
        """When (monotonic) `squeue` started failing; None while it answers."""

    def states(self, job_ids: Iterable[str]) -> dict[str, Optional[str]]:
        """The last known state of each job (a SLURM state, or GONE); None: not known yet.

        The jobs are watched from now on, until `forget`.
        """
        job_ids = list(job_ids)
        with self._lock:
            self._watched.update(job_ids)
            if time.monotonic() - self._refreshed_at >= self.interval:
                self._refresh()
            return {job_id: self._states.get(job_id) for job_id in job_ids}

    def forget(self, job_ids: Iterable[str]) -> None:
        with self._lock:
            for job_id in job_ids:
                self._watched.discard(job_id)
                self._states.pop(job_id, None)

    def _refresh(self) -> None:
        started = self._refreshed_at = time.monotonic()
        asked = sorted(self._watched, key=int)
        if not asked:
            return
        argv = ["squeue", "--noheader", "--format=%i %T", "--states=all", f"--jobs={','.join(asked)}"]
        try:
            result = self.run_squeue(argv, max(self.interval, 30))
        except (OSError, subprocess.TimeoutExpired, ClusterError) as error:
            self._failed(asked, str(error), started)
            return
        if result.returncode == 0:
            listed = dict(line.split(maxsplit=1) for line in result.stdout.splitlines() if line.strip())
            self._answered({job_id: listed.get(job_id, GONE) for job_id in asked})
        elif _INVALID_JOB_ID in result.stderr:
            self._answered(dict.fromkeys(asked, GONE))
        else:
            self._failed(asked, result.stderr.strip() or f"exit status {result.returncode}", started)

    def _answered(self, states: dict[str, str]) -> None:
        self._states.update(states)
        self.failing_since = None
        self.last_error = ""

    def _failed(self, asked: list[str], error: str, started: float) -> None:
        self.last_error = f"squeue failed: {error}"
        if self.failing_since is None:
            self.failing_since = started
        if time.monotonic() - self.failing_since > self.outage_limit:
            for job_id in asked:
                if not has_ended(self._states.get(job_id)):
                    self._states[job_id] = GONE


_shared: dict[Hashable, SlurmJobStates] = {}
_shared_lock = threading.Lock()


def shared_job_states(
    key: Hashable, interval: float, outage_limit: float, run_squeue: RunSqueue = run_squeue_here
) -> SlurmJobStates:
    """The process's `SlurmJobStates` for `key` (a way to reach the cluster), made on first request."""
    with _shared_lock:
        if key not in _shared:
            _shared[key] = SlurmJobStates(interval, outage_limit, run_squeue)
        return _shared[key]
