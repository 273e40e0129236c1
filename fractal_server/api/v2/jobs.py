"""`/api/v2` jobs: submit, list, show, download logs, stop; workflow-task status."""
import json
from pathlib import Path

from flask import Blueprint
from sqlalchemy import select

from fractal_server.api.v2.access import get_dataset, get_job, get_project, get_workflow, user_project_ids
from fractal_server.api.v2.job_files import download_response, request_stop, with_tmp_logs
from fractal_server.api.v2.job_submission import submit_job
from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models import JobV2, User
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import NO_BODY, endpoint
from fractal_server.schemas.jobs import (
    JobCreate,
    JobRead,
    JobSubmitQuery,
    LogQuery,
    StatusQuery,
    TmpLogsQuery,
    WorkflowTasksStatus,
)

blueprint = Blueprint("v2_jobs", __name__, url_prefix="/api/v2")


def without_log(jobs, keep_log: bool) -> list[JobRead]:
    reads = [JobRead.model_validate(job, from_attributes=True) for job in jobs]
    return reads if keep_log else [read.model_copy(update={"log": None}) for read in reads]


@endpoint(
    blueprint,
    "POST",
    "/project/<project_id>/job/submit/",
    access=Access.VERIFIED,
    query=JobSubmitQuery,
    body=JobCreate,
    response=JobRead,
    status=202,
)
def submit(user: User, project_id: int, query: JobSubmitQuery, body: JobCreate):
    """Run a workflow (or a range of it) on a dataset."""
    return submit_job(user, project_id, query.workflow_id, query.dataset_id, body)


@endpoint(blueprint, "GET", "/job/", access=Access.ACTIVE, query=LogQuery, response=list[JobRead])
def list_user_jobs(user: User, query: LogQuery):
    """All jobs of the user's projects."""
    jobs = db.session.scalars(
        select(JobV2).where(JobV2.project_id.in_(user_project_ids(user))).order_by(JobV2.id)
    )
    return without_log(jobs, query.log)


@endpoint(blueprint, "GET", "/project/<project_id>/job/", access=Access.ACTIVE, query=LogQuery, response=list[JobRead])
def list_project_jobs(user: User, project_id: int, query: LogQuery):
    """Jobs of a project."""
    get_project(user, project_id)
    jobs = db.session.scalars(select(JobV2).where(JobV2.project_id == project_id).order_by(JobV2.id))
    return without_log(jobs, query.log)


@endpoint(
    blueprint,
    "GET",
    "/project/<project_id>/workflow/<workflow_id>/job/",
    access=Access.ACTIVE,
    response=list[JobRead],
)
def list_workflow_jobs(user: User, project_id: int, workflow_id: int):
    """Jobs of a workflow."""
    get_workflow(user, project_id, workflow_id)
    return db.session.scalars(select(JobV2).where(JobV2.workflow_id == workflow_id).order_by(JobV2.id)).all()


@endpoint(
    blueprint,
    "GET",
    "/project/<project_id>/job/<job_id>/",
    access=Access.ACTIVE,
    query=TmpLogsQuery,
    response=JobRead,
)
def read_job(user: User, project_id: int, job_id: int, query: TmpLogsQuery):
    """One job; with `show_tmp_logs`, the log so far of a running job."""
    return with_tmp_logs(get_job(user, project_id, job_id), query.show_tmp_logs)


@endpoint(blueprint, "GET", "/project/<project_id>/job/<job_id>/download/", access=Access.ACTIVE)
def download_job_logs(user: User, project_id: int, job_id: int):
    """The job folder as a zip archive."""
    return download_response(get_job(user, project_id, job_id))


@endpoint(blueprint, "GET", "/project/<project_id>/job/<job_id>/stop/", access=Access.ACTIVE, status=202)
def stop_job(user: User, project_id: int, job_id: int):
    """Ask the server process running the job to stop it."""
    request_stop(lambda: get_job(user, project_id, job_id))
    return NO_BODY


@endpoint(
    blueprint,
    "GET",
    "/project/<project_id>/status/",
    access=Access.ACTIVE,
    query=StatusQuery,
    response=WorkflowTasksStatus,
)
def workflow_tasks_status(user: User, project_id: int, query: StatusQuery):
    """Status of each workflow task for a dataset: from its history and its running job."""
    dataset = get_dataset(user, project_id, query.dataset_id)
    workflow = get_workflow(user, project_id, query.workflow_id)
    running = db.session.scalars(
        select(JobV2)
        .where(JobV2.dataset_id == dataset.id, JobV2.workflow_id == workflow.id, JobV2.status == "submitted")
        .order_by(JobV2.id)
    ).all()
    if len(running) > 1:
        raise ApiError(
            422,
            f"Cannot get WorkflowTaskV2 statuses as DatasetV2 {dataset.id} is linked to multiple "
            f"active jobs: {[job.id for job in running]}.",
        )
    history = dataset.history or []
    status_map = {item["workflowtask"]["id"]: item["status"] for item in history}
    last_valid = history[-1]["workflowtask"]["id"] if history else None
    if running:
        job = running[0]
        in_range = workflow.task_list[job.first_task_index : job.last_task_index + 1]
        for wftask in in_range:
            status_map[wftask.id] = "submitted"
        last_valid = (
            workflow.task_list[job.last_task_index].id if job.last_task_index < len(workflow.task_list) else None
        )
        history_file = Path(job.working_dir or "/nonexistent") / "history.json"
        if history_file.exists():
            for item in json.loads(history_file.read_text()):
                status_map[item["workflowtask"]["id"]] = item["status"]
    status = {}
    for wftask in workflow.task_list:
        if wftask.id not in status_map:
            continue
        status[str(wftask.id)] = status_map[wftask.id]
        if status_map[wftask.id] == "failed" or wftask.id == last_valid:
            break
    return WorkflowTasksStatus(status=status)
