"""`/admin/v2/task-group/`: every user's task groups and activities (`api-v2.md` section 12).

Like the user endpoints, without the ownership checks; activities created
here belong to the task group's owner.
"""
from flask import Blueprint
from sqlalchemy import select

from fractal_server import task_group_rules as rules
from fractal_server.api.v2.task_groups import filter_activities
from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models import TaskGroupActivityV2, TaskGroupV2, User
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import NO_BODY, endpoint
from fractal_server.schemas.tasks import (
    AdminActivityListQuery,
    AdminTaskGroupListQuery,
    TaskGroupActivityRead,
    TaskGroupRead,
    TaskGroupUpdate,
    task_group_read,
)
from fractal_server.task_collection import lifecycle

blueprint = Blueprint("admin_task_groups", __name__, url_prefix="/admin/v2")


def _task_group_or_404(task_group_id: int, label: str = "TaskGroupV2") -> TaskGroupV2:
    task_group = db.session.get(TaskGroupV2, task_group_id)
    if task_group is None:
        raise ApiError(404, f"{label} {task_group_id} not found")
    return task_group


@endpoint(
    blueprint,
    "GET",
    "/task-group/",
    access=Access.SUPERUSER,
    query=AdminTaskGroupListQuery,
    response=list[TaskGroupRead],
)
def list_task_groups(user: User, query: AdminTaskGroupListQuery):
    """All task groups, filtered."""
    if query.private and query.user_group_id is not None:
        raise ApiError(
            422, f"Cannot get task groups with both user_group_id={query.user_group_id} and private=True."
        )
    G = TaskGroupV2
    statement = select(G)
    if query.user_id is not None:
        statement = statement.where(G.user_id == query.user_id)
    if query.user_group_id is not None:
        statement = statement.where(G.user_group_id == query.user_group_id)
    if query.private is not None:
        statement = statement.where(G.user_group_id.is_(None) if query.private else G.user_group_id.is_not(None))
    if query.active is not None:
        statement = statement.where(G.active.is_(query.active))
    if query.pkg_name is not None:
        statement = statement.where(G.pkg_name.icontains(query.pkg_name, autoescape=True))
    if query.origin is not None:
        statement = statement.where(G.origin == query.origin.value)
    if query.timestamp_last_used_min is not None:
        statement = statement.where(G.timestamp_last_used >= query.timestamp_last_used_min)
    if query.timestamp_last_used_max is not None:
        statement = statement.where(G.timestamp_last_used <= query.timestamp_last_used_max)
    return [task_group_read(group) for group in db.session.scalars(statement.order_by(G.id))]


@endpoint(
    blueprint,
    "GET",
    "/task-group/activity/",
    access=Access.SUPERUSER,
    query=AdminActivityListQuery,
    response=list[TaskGroupActivityRead],
)
def list_activities(user: User, query: AdminActivityListQuery):
    """All users' task-group activities, filtered."""
    statement = filter_activities(select(TaskGroupActivityV2), query)
    if query.user_id is not None:
        statement = statement.where(TaskGroupActivityV2.user_id == query.user_id)
    return db.session.scalars(statement).all()


@endpoint(blueprint, "GET", "/task-group/<task_group_id>/", access=Access.SUPERUSER, response=TaskGroupRead)
def read_task_group(user: User, task_group_id: int):
    """One task group."""
    return task_group_read(_task_group_or_404(task_group_id, label="TaskGroup"))


@endpoint(
    blueprint,
    "PATCH",
    "/task-group/<task_group_id>/",
    access=Access.SUPERUSER,
    body=TaskGroupUpdate,
    response=TaskGroupRead,
)
def patch_task_group(user: User, task_group_id: int, body: TaskGroupUpdate):
    """Move a task group to one of the calling superuser's groups, or make it private."""
    task_group = _task_group_or_404(task_group_id)
    if "user_group_id" in body.model_fields_set:
        if body.user_group_id is not None:
            rules.check_user_in_group(user.id, body.user_group_id)
        task_group.user_group_id = body.user_group_id
        db.session.commit()
    return task_group_read(task_group)


@endpoint(blueprint, "DELETE", "/task-group/<task_group_id>/", access=Access.SUPERUSER, status=204)
def delete_task_group(user: User, task_group_id: int):
    """Delete a task group and its tasks, unless a workflow uses them."""
    task_group = _task_group_or_404(task_group_id)
    rules.check_not_in_use(task_group)
    rules.delete_task_group(task_group)
    return NO_BODY


@endpoint(
    blueprint,
    "POST",
    "/task-group/<task_group_id>/deactivate/",
    access=Access.SUPERUSER,
    response=TaskGroupActivityRead,
    status=202,
)
def deactivate_task_group(user: User, task_group_id: int):
    """Deactivate any task group (the `active` check comes first here)."""
    task_group = _task_group_or_404(task_group_id)
    rules.check_active_is(task_group, True)
    rules.check_no_ongoing_activity(task_group)
    rules.check_no_submitted_jobs(task_group)
    return lifecycle.request_deactivation(task_group, set_inactive_now=False)


@endpoint(
    blueprint,
    "POST",
    "/task-group/<task_group_id>/reactivate/",
    access=Access.SUPERUSER,
    response=TaskGroupActivityRead,
    status=202,
)
def reactivate_task_group(user: User, task_group_id: int):
    """Reactivate any task group."""
    task_group = _task_group_or_404(task_group_id)
    rules.check_active_is(task_group, False)
    rules.check_no_ongoing_activity(task_group)
    rules.check_no_submitted_jobs(task_group)
    return lifecycle.request_reactivation(task_group)
