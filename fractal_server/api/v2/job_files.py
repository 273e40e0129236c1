"""What the job endpoints read or write in job folders: logs, archives, stop requests."""
from collections.abc import Callable
from pathlib import Path

from flask import Response

from fractal_server.db.models import JobV2
from fractal_server.http.errors import ApiError
from fractal_server.runner.archive import zip_bytes
from fractal_server.runner.executor import SHUTDOWN_FILE
from fractal_server.runner.job import WORKFLOW_LOG
from fractal_server.schemas.jobs import JobRead
from fractal_server.server_state import server_state


def with_tmp_logs(job: JobV2, show_tmp_logs: bool) -> JobRead:
    read = JobRead.model_validate(job, from_attributes=True)
    if show_tmp_logs and job.status == "submitted" and job.working_dir:
        log_file = Path(job.working_dir) / WORKFLOW_LOG
        if log_file.exists():
            read = read.model_copy(update={"log": log_file.read_text(errors="replace")})
    return read


def download_response(job: JobV2) -> Response:
    folder = Path(job.working_dir or "")
    archive = folder.with_name(folder.name + ".zip")
    if archive.exists():
        content = archive.read_bytes()
    elif job.working_dir and folder.is_dir():
        content = zip_bytes(folder)
    else:
        raise ApiError(404, f"No files for job {job.id}: its folder does not exist.")
    return Response(
        content,
        status=200,
        headers={
            "Content-Type": "application/x-zip-compressed",
            "Content-Disposition": f"attachment;filename={folder.name}_archive.zip",
        },
    )


def request_stop(find_job: Callable[[], JobV2]) -> None:
    """Write the job's `shutdown` file; the process running the job stops it."""
    backend = server_state().backend
    if not backend.supports_stop:
        raise ApiError(
            422, f"Stopping a job execution is not implemented for FRACTAL_RUNNER_BACKEND={backend.name}."
        )
    job = find_job()
    folder = Path(job.working_dir or "")
    if not job.working_dir or not folder.is_dir():
        raise ApiError(422, f"Cannot stop job {job.id}: its folder {folder} does not exist (has it ended?).")
    (folder / SHUTDOWN_FILE).write_text(f"Stop requested for job {job.id}.\n")
