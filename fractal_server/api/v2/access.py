"""Ownership checks shared by the `/api/v2` endpoints (`api-v2.md` section 0.6)."""
from sqlalchemy import select

from fractal_server.db import db
from fractal_server.db.models import (
    DatasetV2,
    JobV2,
    LinkUserProjectV2,
    ProjectV2,
    User,
    WorkflowTaskV2,
    WorkflowV2,
)
from fractal_server.http.errors import ApiError


def get_project(user: User, project_id: int) -> ProjectV2:
    project = db.session.get(ProjectV2, project_id)
    if project is None:
        raise ApiError(404, "Project not found")
    if db.session.get(LinkUserProjectV2, (project_id, user.id)) is None:
        raise ApiError(403, f"Not allowed on project {project_id}")
    return project


def get_dataset(user: User, project_id: int, dataset_id: int) -> DatasetV2:
    get_project(user, project_id)
    dataset = db.session.get(DatasetV2, dataset_id)
    if dataset is None:
        raise ApiError(404, "Dataset not found")
    if dataset.project_id != project_id:
        raise ApiError(422, f"Invalid project_id={project_id} for dataset_id={dataset_id}")
    return dataset


def get_workflow(user: User, project_id: int, workflow_id: int) -> WorkflowV2:
    get_project(user, project_id)
    workflow = db.session.get(WorkflowV2, workflow_id)
    if workflow is None:
        raise ApiError(404, "Workflow not found")
    if workflow.project_id != project_id:
        raise ApiError(422, f"Invalid project_id={project_id} for workflow_id={workflow_id}.")
    return workflow


def get_workflow_task(
    user: User, project_id: int, workflow_id: int, workflow_task_id: int
) -> WorkflowTaskV2:
    get_workflow(user, project_id, workflow_id)
    workflow_task = db.session.get(WorkflowTaskV2, workflow_task_id)
    if workflow_task is None:
        raise ApiError(404, "WorkflowTask not found")
    if workflow_task.workflow_id != workflow_id:
        raise ApiError(
            422, f"Invalid workflow_id={workflow_id} for workflow_task_id={workflow_task_id}"
        )
    return workflow_task


def get_job(user: User, project_id: int, job_id: int) -> JobV2:
    get_project(user, project_id)
    job = db.session.get(JobV2, job_id)
    if job is None:
        raise ApiError(404, "Job not found")
    if job.project_id != project_id:
        raise ApiError(422, f"Invalid project_id={project_id} for job_id={job_id}")
    return job


def user_project_ids(user: User):
    """A subquery: ids of the projects linked to the user."""
    return select(LinkUserProjectV2.project_id).where(LinkUserProjectV2.user_id == user.id)
