"""The states of this server process's SLURM jobs, from one `squeue` per poll interval.

All the runners of a process (one per running Fractal job) ask the same
`SlurmJobStates`: it runs `squeue` for every job any of them watches at most
once per interval, however many jobs there are, and answers from what it
learnt. `squeue` runs as the service account (it lists every user's jobs).

A job that `squeue` no longer lists is `GONE`: SLURM forgets finished jobs
(`MinJobAge`), and answers "Invalid job id specified" when it knows none of
the ids asked. So a purged job never looks as if it were still running. When
`squeue` itself fails (the controller does not answer) the states are not
known and the jobs are waited for, for at most `OUTAGE_LIMIT` seconds.
"""

import subprocess
import threading
import time
from collections.abc import Iterable
from typing import Optional

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
OUTAGE_LIMIT = 600
"""Seconds of failing `squeue` after which the watched jobs are taken as gone."""
_INVALID_JOB_ID = "Invalid job id specified"


def has_ended(state: Optional[str]) -> bool:
    return state == GONE or state in FINAL_STATES


class SlurmJobStates:
    def __init__(self, interval: float):
        self.interval = interval
        self.last_error = ""
        """What `squeue` said when it last failed ("" after an answer)."""
        self._lock = threading.Lock()
        self._watched: set[str] = set()
        self._states: dict[str, str] = {}
        self._refreshed_at = float("-inf")
        self._failing_since: Optional[float] = None

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
        self._refreshed_at = time.monotonic()
        asked = sorted(self._watched, key=int)
        if not asked:
            return
        try:
            result = subprocess.run(
                [
                    "squeue",
                    "--noheader",
                    "--format=%i %T",
                    "--states=all",
                    f"--jobs={','.join(asked)}",
                ],
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=max(self.interval, 30),
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            self._failed(asked, str(error))
            return
        if result.returncode == 0:
            listed = dict(line.split(maxsplit=1) for line in result.stdout.splitlines() if line.strip())
            self._answered({job_id: listed.get(job_id, GONE) for job_id in asked})
        elif _INVALID_JOB_ID in result.stderr:
            self._answered(dict.fromkeys(asked, GONE))
        else:
            self._failed(asked, result.stderr.strip() or f"exit status {result.returncode}")

    def _answered(self, states: dict[str, str]) -> None:
        self._states.update(states)
        self._failing_since = None
        self.last_error = ""

    def _failed(self, asked: list[str], error: str) -> None:
        self.last_error = f"squeue failed: {error}"
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if now - self._failing_since > OUTAGE_LIMIT:
            for job_id in asked:
                if not has_ended(self._states.get(job_id)):
                    self._states[job_id] = GONE


_shared: Optional[SlurmJobStates] = None
_shared_lock = threading.Lock()


def shared_job_states(interval: float) -> SlurmJobStates:
    """The process's one `SlurmJobStates` (made with the first interval asked)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SlurmJobStates(interval)
        return _shared
