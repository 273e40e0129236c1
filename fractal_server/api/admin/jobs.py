"""`/admin/v2/job/`: every user's jobs, for superusers."""
from flask import Blueprint
from sqlalchemy import select

from fractal_server.api.v2.job_files import download_response, request_stop, with_tmp_logs
from fractal_server.api.v2.jobs import without_log
from fractal_server.auth.current_user import Access
from fractal_server.db import db, utc_now
from fractal_server.db.models import JobV2, LinkUserProjectV2, User
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import NO_BODY, endpoint
from fractal_server.schemas.jobs import AdminJobListQuery, AdminJobUpdate, JobRead, JobStatus, TmpLogsQuery

blueprint = Blueprint("admin_jobs", __name__, url_prefix="/admin/v2")


def get_job_or_404(job_id: int) -> JobV2:
    job = db.session.get(JobV2, job_id)
    if job is None:
        raise ApiError(404, f"Job {job_id} not found")
    return job


@endpoint(blueprint, "GET", "/job/", access=Access.SUPERUSER, query=AdminJobListQuery, response=list[JobRead])
def list_jobs(user: User, query: AdminJobListQuery):
    """Jobs of all users, filtered."""
    statement = select(JobV2).order_by(JobV2.id)
    equalities = {
        JobV2.id: query.id,
        JobV2.project_id: query.project_id,
        JobV2.dataset_id: query.dataset_id,
        JobV2.workflow_id: query.workflow_id,
        JobV2.status: query.status.value if query.status else None,
    }
    for column, value in equalities.items():
        if value is not None:
            statement = statement.where(column == value)
    if query.user_id is not None:
        projects = select(LinkUserProjectV2.project_id).where(LinkUserProjectV2.user_id == query.user_id)
        statement = statement.where(JobV2.project_id.in_(projects))
    bounds = (
        (JobV2.start_timestamp, query.start_timestamp_min, query.start_timestamp_max),
        (JobV2.end_timestamp, query.end_timestamp_min, query.end_timestamp_max),
    )
    for column, low, high in bounds:
        if low is not None:
            statement = statement.where(column >= low)
        if high is not None:
            statement = statement.where(column <= high)
    return without_log(db.session.scalars(statement), query.log)


@endpoint(blueprint, "GET", "/job/<job_id>/", access=Access.SUPERUSER, query=TmpLogsQuery, response=JobRead)
def read_job(user: User, job_id: int, query: TmpLogsQuery):
    """One job."""
    return with_tmp_logs(get_job_or_404(job_id), query.show_tmp_logs)


@endpoint(blueprint, "PATCH", "/job/<job_id>/", access=Access.SUPERUSER, body=AdminJobUpdate, response=JobRead)
def mark_job_failed(user: User, job_id: int, body: AdminJobUpdate):
    """Mark a job failed (e.g. one left `submitted` by a crash); no other change is allowed."""
    job = get_job_or_404(job_id)
    if body.status is not JobStatus.FAILED:
        raise ApiError(422, f"Cannot set job status to JobStatusTypeV2.{body.status.name}")
    job.status = JobStatus.FAILED.value
    job.end_timestamp = utc_now()
    db.session.commit()
    return job


@endpoint(blueprint, "GET", "/job/<job_id>/stop/", access=Access.SUPERUSER, status=202)
def stop_job(user: User, job_id: int):
    """Ask the server process running the job to stop it."""
    request_stop(lambda: get_job_or_404(job_id))
    return NO_BODY


@endpoint(blueprint, "GET", "/job/<job_id>/download/", access=Access.SUPERUSER)
def download_job(user: User, job_id: int):
    """The job folder as a zip archive."""
    return download_response(get_job_or_404(job_id))
