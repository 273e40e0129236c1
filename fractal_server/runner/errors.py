"""Why a job failed, and the report that becomes the job's log."""
import traceback
from typing import Optional


class TaskExecutionError(RuntimeError):
    """A task process failed (positive exit code, or an invalid command)."""

    def __init__(self, message: str, *, order: int, task_name: str):
        super().__init__(message)
        self.order = order
        self.task_name = task_name


class JobExecutionError(RuntimeError):
    """The job could not go on: killed task, invalid output, broken image rule...

    Two flavours, as in the job report (runner-v2.md section 7): `info` is
    what the backend learnt about a call that did not complete (killed by a
    signal, stopped; reported in an `ADDITIONAL INFO` section, after the
    backend's `sections` such as `COMMAND`, `STDOUT`, `STDERR`), while a plain
    message (a rule of the core was broken) is reported as it is.
    """

    def __init__(self, message: str = "", *, info: Optional[str] = None, sections: tuple[tuple[str, str], ...] = ()):
        super().__init__(message or info or "")
        self.info = info
        self.sections = sections


def failure_report(error: BaseException, job_id: int) -> str:
    if isinstance(error, TaskExecutionError):
        return (
            f"TASK ERROR: Task name: {error.task_name}, position in Workflow: {error.order}\n"
            f"TRACEBACK:\n{error}"
        )
    if isinstance(error, JobExecutionError):
        content = "".join(f"{title}:\n{text}\n\n" for title, text in error.sections)
        if error.info:
            content += f"ADDITIONAL INFO:\n{error.info}\n\n"
        content = content or str(error)
        return f"JOB ERROR in Fractal job {job_id}:\nTRACEBACK:\nJobExecutionError\n\n{content}"
    trace = "".join(traceback.format_exception(error))
    return f"UNKNOWN ERROR in Fractal job {job_id}\nTRACEBACK:\n{trace}"


def failed_order(error: BaseException) -> Optional[int]:
    """The workflow position of the failed task, when the error knows it."""
    return error.order if isinstance(error, TaskExecutionError) else None
