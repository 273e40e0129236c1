"""`/api/v2/project/{p}/workflow/`: workflows, their export and import."""
from typing import Optional

from flask import Blueprint
from sqlalchemy import select, update

from fractal_server.api.v2.access import get_project, get_workflow, user_project_ids
from fractal_server.api.v2.task_access import can_read_task_group, readable_task_groups_query, user_group_ids
from fractal_server.api.v2.workflow_tasks import append_workflow_task
from fractal_server.auth.accounts import default_group
from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models.jobs import submitted_job_ids
from fractal_server.db.models import JobV2, TaskGroupV2, TaskV2, User, WorkflowV2
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import NO_BODY, endpoint
from fractal_server.schemas.workflows import (
    TaskImport,
    TaskImportLegacy,
    WorkflowCreate,
    WorkflowExport,
    WorkflowImport,
    WorkflowRead,
    WorkflowReadWithWarnings,
    WorkflowUpdate,
)

blueprint = Blueprint("v2_workflows", __name__, url_prefix="/api/v2")

WORKFLOW = "/project/<project_id>/workflow/<workflow_id>/"


def check_name_free(project_id: int, name: str) -> None:
    taken = db.session.scalar(
        select(WorkflowV2.id).where(WorkflowV2.project_id == project_id, WorkflowV2.name == name)
    )
    if taken is not None:
        raise ApiError(422, f"Workflow with name='{name}' and project_id={project_id} already exists.")


def with_warnings(user: User, workflow: WorkflowV2) -> WorkflowReadWithWarnings:
    """The workflow, each task flagged if inactive or not readable by the user."""
    result = WorkflowReadWithWarnings.model_validate(workflow, from_attributes=True)
    for item, workflow_task in zip(result.task_list, workflow.task_list):
        task_group = workflow_task.task.task_group
        if task_group is not None and not task_group.active:
            item.warning = "Task is not active."
        elif task_group is None or not can_read_task_group(user, task_group):
            item.warning = "Current user has no access to this task."
    return result


@endpoint(blueprint, "GET", "/project/<project_id>/workflow/", access=Access.ACTIVE, response=list[WorkflowRead])
def list_project_workflows(user: User, project_id: int):
    """The workflows of a project."""
    get_project(user, project_id)
    return db.session.scalars(
        select(WorkflowV2).where(WorkflowV2.project_id == project_id).order_by(WorkflowV2.id)
    ).all()


@endpoint(blueprint, "GET", "/workflow/", access=Access.ACTIVE, response=list[WorkflowRead])
def list_user_workflows(user: User):
    """The workflows of all the user's projects."""
    return db.session.scalars(
        select(WorkflowV2)
        .where(WorkflowV2.project_id.in_(user_project_ids(user)))
        .order_by(WorkflowV2.id)
    ).all()


@endpoint(
    blueprint, "POST", "/project/<project_id>/workflow/",
    access=Access.ACTIVE, body=WorkflowCreate, response=WorkflowRead, status=201,
)
def create_workflow(user: User, project_id: int, body: WorkflowCreate):
    """Create an empty workflow."""
    get_project(user, project_id)
    check_name_free(project_id, body.name)
    workflow = WorkflowV2(name=body.name, project_id=project_id)
    db.session.add(workflow)
    db.session.commit()
    return workflow


@endpoint(blueprint, "GET", WORKFLOW, access=Access.ACTIVE, response=WorkflowReadWithWarnings)
def read_workflow(user: User, project_id: int, workflow_id: int):
    """One workflow, with a warning on each task the user cannot run."""
    return with_warnings(user, get_workflow(user, project_id, workflow_id))


@endpoint(blueprint, "PATCH", WORKFLOW, access=Access.ACTIVE, body=WorkflowUpdate, response=WorkflowReadWithWarnings)
def patch_workflow(user: User, project_id: int, workflow_id: int, body: WorkflowUpdate):
    """Rename a workflow and/or reorder its tasks."""
    workflow = get_workflow(user, project_id, workflow_id)
    if body.name:
        check_name_free(project_id, body.name)
        workflow.name = body.name
    if body.reordered_workflowtask_ids is not None:
        _reorder(workflow, body.reordered_workflowtask_ids)
    db.session.commit()
    return with_warnings(user, workflow)


def _reorder(workflow: WorkflowV2, new_ids: list[int]) -> None:
    """The position of each id in `new_ids` becomes the order of that workflow task."""
    by_id = {workflow_task.id: workflow_task for workflow_task in workflow.task_list}
    current_ids = [workflow_task.id for workflow_task in workflow.task_list]
    if sorted(new_ids) != sorted(current_ids):
        raise ApiError(
            422,
            "`reordered_workflowtask_ids` must be a permutation of "
            f"{current_ids} (given {new_ids})",
        )
    for position, workflow_task_id in enumerate(new_ids):
        by_id[workflow_task_id].order = position


@endpoint(blueprint, "DELETE", WORKFLOW, access=Access.ACTIVE, status=204)
def delete_workflow(user: User, project_id: int, workflow_id: int):
    """Delete a workflow and its tasks; its jobs stay, detached."""
    workflow = get_workflow(user, project_id, workflow_id)
    active = submitted_job_ids(JobV2.workflow_id == workflow_id)
    if active:
        ids = ", ".join(map(str, active))
        raise ApiError(422, f"Cannot delete workflow {workflow_id} because it is linked to active job(s) {ids}.")
    db.session.execute(update(JobV2).where(JobV2.workflow_id == workflow_id).values(workflow_id=None))
    db.session.delete(workflow)
    db.session.commit()
    return NO_BODY


@endpoint(blueprint, "GET", WORKFLOW + "export/", access=Access.ACTIVE, response=WorkflowExport)
def export_workflow(user: User, project_id: int, workflow_id: int):
    """The workflow without ids; tasks are named by package, version and name."""
    workflow = get_workflow(user, project_id, workflow_id)
    return {
        "name": workflow.name,
        "task_list": [
            {
                "meta_non_parallel": workflow_task.meta_non_parallel,
                "meta_parallel": workflow_task.meta_parallel,
                "args_non_parallel": workflow_task.args_non_parallel,
                "args_parallel": workflow_task.args_parallel,
                "input_filters": workflow_task.input_filters,
                "task": {
                    "pkg_name": workflow_task.task.task_group.pkg_name,
                    "version": workflow_task.task.task_group.version,
                    "name": workflow_task.task.name,
                },
            }
            for workflow_task in workflow.task_list
        ],
    }


@endpoint(
    blueprint, "POST", "/project/<project_id>/workflow/import/",
    access=Access.ACTIVE, body=WorkflowImport, response=WorkflowReadWithWarnings, status=201,
)
def import_workflow(user: User, project_id: int, body: WorkflowImport):
    """Create a workflow from an export, matching each task among the user's task groups."""
    get_project(user, project_id)
    check_name_free(project_id, body.name)
    matcher = TaskMatcher(user)
    tasks = []
    for item in body.task_list:
        task = matcher.find(item.task)
        if task is None:
            raise ApiError(422, f"Could not find a task matching with {item.task}.")
        tasks.append(task)
    workflow = WorkflowV2(name=body.name, project_id=project_id)
    db.session.add(workflow)
    for item, task in zip(body.task_list, tasks):
        append_workflow_task(
            workflow,
            task,
            meta_non_parallel=item.meta_non_parallel,
            meta_parallel=item.meta_parallel,
            args_non_parallel=item.args_non_parallel,
            args_parallel=item.args_parallel,
            input_filters=item.input_filters,
        )
    db.session.commit()
    return with_warnings(user, workflow)


class TaskMatcher:
    """Finds tasks for an import among the task groups the user can read (active or not)."""

    def __init__(self, user: User):
        self.user = user
        self.candidates: list[TaskGroupV2] = list(db.session.scalars(readable_task_groups_query(user)))

    def find(self, wanted) -> Optional[TaskV2]:
        if isinstance(wanted, TaskImportLegacy):
            return self._by_source(wanted.source)
        return self._by_package(wanted)

    def _by_source(self, source: str) -> Optional[TaskV2]:
        for task_group in self.candidates:
            for task in task_group.task_list:
                if task.source == source:
                    return task
        return None

    def _by_package(self, wanted: TaskImport) -> Optional[TaskV2]:
        matching = [
            task_group
            for task_group in self.candidates
            if task_group.pkg_name == wanted.pkg_name and _task_named(task_group, wanted.name)
        ]
        if not matching:
            return None
        version = wanted.version
        if version is None:
            version = max(matching, key=lambda task_group: task_group.version or "").version
        # As in the reference: the version filter applies to all candidates, not to `matching`.
        same_version = [task_group for task_group in self.candidates if task_group.version == version]
        if not same_version:
            return None
        if len(same_version) == 1:
            chosen = same_version[0]
        else:
            chosen = self._disambiguate(matching)
        return None if chosen is None else _task_named(chosen, wanted.name)

    def _disambiguate(self, task_groups: list[TaskGroupV2]) -> Optional[TaskGroupV2]:
        """Own group first, then one shared with `All`, then the oldest of the user's groups."""
        for task_group in task_groups:
            if task_group.user_id == self.user.id:
                return task_group
        all_group = default_group()
        if all_group is not None:
            for task_group in task_groups:
                if task_group.user_group_id == all_group.id:
                    return task_group
        for group_id in user_group_ids(self.user.id):
            for task_group in task_groups:
                if task_group.user_group_id == group_id:
                    return task_group
        return None


def _task_named(task_group: TaskGroupV2, name: str) -> Optional[TaskV2]:
    return next((task for task in task_group.task_list if task.name == name), None)
