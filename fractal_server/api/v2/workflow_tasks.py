"""`/api/v2/project/{p}/workflow/{w}/wftask/`: the steps of a workflow."""
from typing import Optional

from flask import Blueprint

from fractal_server.api.v2.access import get_workflow, get_workflow_task
from fractal_server.api.v2.task_access import get_task_read
from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models import TaskV2, User, WorkflowTaskV2, WorkflowV2
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import NO_BODY, endpoint
from fractal_server.schemas.filters import Filters
from fractal_server.schemas.workflows import (
    WorkflowTaskCreate,
    WorkflowTaskQuery,
    WorkflowTaskRead,
    WorkflowTaskUpdate,
)

blueprint = Blueprint("v2_workflow_tasks", __name__, url_prefix="/api/v2")

WFTASK = "/project/<project_id>/workflow/<workflow_id>/wftask/<workflow_task_id>/"


def _merged_meta(task_meta: Optional[dict], given: Optional[dict]) -> Optional[dict]:
    """The task's default meta updated with the given one; empty means null."""
    merged = {**(task_meta or {}), **(given or {})}
    return merged or None


def append_workflow_task(
    workflow: WorkflowV2,
    task: TaskV2,
    *,
    meta_non_parallel: Optional[dict] = None,
    meta_parallel: Optional[dict] = None,
    args_non_parallel: Optional[dict] = None,
    args_parallel: Optional[dict] = None,
    input_filters: Filters = Filters(),
) -> WorkflowTaskV2:
    """Add `task` at the end of `workflow` (not committed); used by insert and import."""
    workflow_task = WorkflowTaskV2(
        order=len(workflow.task_list),
        task=task,
        task_type=task.type,
        meta_non_parallel=_merged_meta(task.meta_non_parallel, meta_non_parallel),
        meta_parallel=_merged_meta(task.meta_parallel, meta_parallel),
        args_non_parallel=args_non_parallel,
        args_parallel=args_parallel,
        input_filters=input_filters.model_dump(),
    )
    workflow.task_list.append(workflow_task)
    return workflow_task


def _check_create_compatible(task_type: str, body: WorkflowTaskCreate) -> None:
    if task_type == "parallel" and (
        body.meta_non_parallel is not None or body.args_non_parallel is not None
    ):
        raise ApiError(
            422,
            "Cannot set `WorkflowTaskV2.meta_non_parallel` or `WorkflowTask.args_non_parallel` "
            "if the associated Task is `parallel`.",
        )
    if task_type == "non_parallel" and (
        body.meta_parallel is not None or body.args_parallel is not None
    ):
        raise ApiError(
            422,
            "Cannot set `WorkflowTaskV2.meta_parallel` or `WorkflowTask.args_parallel` "
            "if the associated Task is `non_parallel`.",
        )


def _check_update_compatible(task_type: str, body: WorkflowTaskUpdate) -> None:
    if task_type == "parallel" and (
        body.args_non_parallel is not None or body.meta_non_parallel is not None
    ):
        raise ApiError(
            422,
            "Cannot patch `WorkflowTaskV2.args_non_parallel` or `WorkflowTask.meta_non_parallel` "
            "if the associated Task is parallel.",
        )
    if task_type == "non_parallel" and (
        body.args_parallel is not None or body.meta_parallel is not None
    ):
        raise ApiError(
            422,
            "Cannot patch `WorkflowTaskV2.args_parallel` or `WorkflowTask.meta_parallel` "
            "if the associated Task is non parallel.",
        )


@endpoint(
    blueprint,
    "POST",
    "/project/<project_id>/workflow/<workflow_id>/wftask/",
    access=Access.ACTIVE,
    query=WorkflowTaskQuery,
    body=WorkflowTaskCreate,
    response=WorkflowTaskRead,
    status=201,
)
def create_workflow_task(
    user: User, project_id: int, workflow_id: int, query: WorkflowTaskQuery, body: WorkflowTaskCreate
):
    """Append a task to a workflow."""
    workflow = get_workflow(user, project_id, workflow_id)
    task = get_task_read(user, query.task_id, require_active=True)
    _check_create_compatible(task.type, body)
    workflow_task = append_workflow_task(
        workflow,
        task,
        meta_non_parallel=body.meta_non_parallel,
        meta_parallel=body.meta_parallel,
        args_non_parallel=body.args_non_parallel,
        args_parallel=body.args_parallel,
        input_filters=body.input_filters,
    )
    db.session.commit()
    return workflow_task


@endpoint(blueprint, "GET", WFTASK, access=Access.ACTIVE, response=WorkflowTaskRead)
def read_workflow_task(user: User, project_id: int, workflow_id: int, workflow_task_id: int):
    """One workflow task."""
    return get_workflow_task(user, project_id, workflow_id, workflow_task_id)


@endpoint(blueprint, "PATCH", WFTASK, access=Access.ACTIVE, body=WorkflowTaskUpdate, response=WorkflowTaskRead)
def patch_workflow_task(
    user: User, project_id: int, workflow_id: int, workflow_task_id: int, body: WorkflowTaskUpdate
):
    """Replace arguments, meta or filters; metas are not merged with task defaults here."""
    workflow_task = get_workflow_task(user, project_id, workflow_id, workflow_task_id)
    _check_update_compatible(workflow_task.task_type, body)
    for key in body.model_fields_set:
        value = getattr(body, key)
        if key in ("args_parallel", "args_non_parallel"):
            value = value or None
        elif key == "input_filters":
            value = value.model_dump()
        setattr(workflow_task, key, value)
    db.session.commit()
    return workflow_task


@endpoint(blueprint, "DELETE", WFTASK, access=Access.ACTIVE, status=204)
def delete_workflow_task(user: User, project_id: int, workflow_id: int, workflow_task_id: int):
    """Remove a workflow task; the others are renumbered 0..n-1."""
    workflow_task = get_workflow_task(user, project_id, workflow_id, workflow_task_id)
    workflow = workflow_task.workflow
    workflow.task_list.remove(workflow_task)
    for position, remaining in enumerate(workflow.task_list):
        remaining.order = position
    db.session.commit()
    return NO_BODY
