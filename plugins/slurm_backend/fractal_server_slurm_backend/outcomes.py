"""How each call of a finished SLURM job ended, and what the job report shows about that job.

Sources, in order: the call's status file (the call wrapper's record), the
SLURM job's final state (a time limit, a cancellation: the calls that did
not succeed end with the job), and `srun`'s own report in the call's log.
The wrapper records the exit status of `srun`, which runs the call as a
job step: `srun` exits with 128 + n when the call was killed by signal n,
and with 1 when the step ran out of memory, saying so on its last line
(`srun: error: <node>: task 0: Out Of Memory`); `squeue` knows nothing of
steps, so that line is how an out-of-memory call is told from a failing one.
"""

import dataclasses
import re
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
_SRUN_TASK_END = re.compile(r"^srun: error: \S+: task \d+: (.+)$", re.MULTILINE)
_OUT_OF_MEMORY = "Out Of Memory"
_EXITED = "Exited with exit code"

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
    if job_state in _JOB_ENDS:
        returncode = recorded.returncode if recorded is not None else None
        return CallOutcome(_JOB_ENDS[job_state], returncode, _job_end(job_id, job_state), sections)
    if recorded is None:
        return None
    if recorded.status is CallStatus.FAILED and recorded.returncode is not None:
        recorded = _with_srun_report(recorded, call.log_file(root))
    return dataclasses.replace(recorded, sections=sections)


def lost(job_id: str, job_state: str, sections: tuple[tuple[str, str], ...], more: str = "") -> CallOutcome:
    """A call of an ended job without a status file; `more`: what else is known (e.g. a failing squeue)."""
    detail = f"{_job_end(job_id, job_state)} {LIKELY_CAUSES}" + (f"\n{more}" if more else "")
    return CallOutcome(CallStatus.LOST, detail=detail, sections=sections)


def _job_end(job_id: str, job_state: str) -> str:
    if job_state == GONE:
        return f"SLURM job {job_id} is no longer listed by squeue."
    return f"SLURM job {job_id} ended with state {job_state}."


def _with_srun_report(outcome: CallOutcome, log: Path) -> CallOutcome:
    try:
        reports = _SRUN_TASK_END.findall(log.read_text(errors="replace"))
    except FileNotFoundError:
        return outcome
    if not reports:
        return outcome
    report = reports[-1]
    if report == _OUT_OF_MEMORY:
        return CallOutcome(CallStatus.OUT_OF_MEMORY, outcome.returncode, f"srun: {report}")
    if outcome.returncode > 128 and not report.startswith(_EXITED):
        return CallOutcome(CallStatus.FAILED, 128 - outcome.returncode, f"srun: {report}")
    return outcome
