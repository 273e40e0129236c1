"""How each call of a finished SLURM job ended, and what the job report shows about that job.

Sources, in order: the call's status file (the call wrapper's record, which
also tells an out-of-memory kill: the wrapper watches the OOM kill count of
its memory cgroup, its job step's where SLURM confines steps in cgroups),
then the SLURM job's final state (a time limit, a cancellation, an
out-of-memory batch step: the calls that did not succeed end with the job).
"""

import dataclasses
from pathlib import Path
from typing import Optional

from fractal_server.runner.backend import CallOutcome, CallStatus, TaskCall
from fractal_server.runner.calls import read_outcome

from fractal_server_slurm_backend.squeue import GONE

_JOB_ENDS = {
    "TIMEOUT": CallStatus.TIMED_OUT,
    "DEADLINE": CallStatus.TIMED_OUT,
    "OUT_OF_MEMORY": CallStatus.OUT_OF_MEMORY,
    "CANCELLED": CallStatus.CANCELLED,
    "PREEMPTED": CallStatus.CANCELLED,
}

LIKELY_CAUSES = (
    "No file tells how this task call ended. Likely causes: the SLURM job was cancelled, "
    "by its user, by an administrator, or by SLURM itself because it exceeded its memory "
    "or time limits (then its output and error files may be empty); or the files it "
    "wrote are not visible from the server (a filesystem problem)."
)


def file_section(title: str, path: Path) -> tuple[str, str]:
    """(title, content) of a file for the job report; says so if it is missing or empty."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return title, f"File {path} is missing"
    return title, text if text else f"File {path} is empty"


def call_outcome(
    call: TaskCall,
    root: Path,
    *,
    job_id: str,
    job_state: str,
    sections: tuple[tuple[str, str], ...],
) -> Optional[CallOutcome]:
    """The call's outcome, with the SLURM job's `sections`; None if nothing tells it yet."""
    recorded = read_outcome(call, root)
    if recorded is not None and recorded.status is CallStatus.SUCCEEDED:
        return recorded
    if recorded is not None and recorded.status is CallStatus.OUT_OF_MEMORY:
        return dataclasses.replace(recorded, sections=sections)
    if job_state in _JOB_ENDS:
        returncode = recorded.returncode if recorded is not None else None
        return CallOutcome(_JOB_ENDS[job_state], returncode, _job_end(job_id, job_state), sections)
    if recorded is None:
        return None
    return dataclasses.replace(recorded, sections=sections)


def lost(job_id: str, job_state: str, sections: tuple[tuple[str, str], ...], more: str = "") -> CallOutcome:
    """A call of an ended job without a status file; `more`: what else is known (e.g. a failing squeue)."""
    detail = f"{_job_end(job_id, job_state)} {LIKELY_CAUSES}" + (f"\n{more}" if more else "")
    return CallOutcome(CallStatus.LOST, detail=detail, sections=sections)


def _job_end(job_id: str, job_state: str) -> str:
    if job_state == GONE:
        return f"SLURM job {job_id} is no longer listed by squeue."
    return f"SLURM job {job_id} ended with state {job_state}."

