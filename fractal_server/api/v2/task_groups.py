"""`/api/v2/task-group/`: task groups and their activities (`api-v2.md` section 9)."""
from flask import Blueprint
from sqlalchemy import select

from fractal_server import task_group_rules as rules
from fractal_server.api.v2.task_access import get_task_group_full, get_task_group_read, readable_task_groups_query
from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models import TaskGroupActivityV2, TaskGroupV2, User
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import NO_BODY, endpoint
from fractal_server.schemas.tasks import (
    ActivityListQuery,
    TaskGroupActivityRead,
    TaskGroupListQuery,
    TaskGroupRead,
    TaskGroupUpdate,
    task_group_read,
)
from fractal_server.task_collection import lifecycle

blueprint = Blueprint("v2_task_groups", __name__, url_prefix="/api/v2")


@endpoint(
    blueprint, "GET", "/task-group/", access=Access.ACTIVE, query=TaskGroupListQuery, response=list[TaskGroupRead]
)
def list_task_groups(user: User, query: TaskGroupListQuery):
    """Task groups the user can read (or owns, with `only_owner`)."""
    if query.only_owner:
        statement = select(TaskGroupV2).where(TaskGroupV2.user_id == user.id).order_by(TaskGroupV2.id)
    else:
        statement = readable_task_groups_query(user)
    if query.only_active:
        statement = statement.where(TaskGroupV2.active.is_(True))
    return [task_group_read(group, query.args_schema) for group in db.session.scalars(statement)]


@endpoint(blueprint, "GET", "/task-group/<task_group_id>/", access=Access.ACTIVE, response=TaskGroupRead)
def read_task_group(user: User, task_group_id: int):
    """One task group."""
    return task_group_read(get_task_group_read(user, task_group_id))


@endpoint(
    blueprint,
    "PATCH",
    "/task-group/<task_group_id>/",
    access=Access.ACTIVE,
    body=TaskGroupUpdate,
    response=TaskGroupRead,
)
def patch_task_group(user: User, task_group_id: int, body: TaskGroupUpdate):
    """Share the task group with another of the user's groups (or make it private)."""
    task_group = get_task_group_full(user, task_group_id)
    if "user_group_id" in body.model_fields_set:
        new_group_id = body.user_group_id
        if new_group_id != task_group.user_group_id:
            rules.check_unique_for_group(new_group_id, task_group.pkg_name, task_group.version)
        if new_group_id is not None:
            rules.check_user_in_group(user.id, new_group_id)
        task_group.user_group_id = new_group_id
        db.session.commit()
    return task_group_read(task_group)


@endpoint(blueprint, "DELETE", "/task-group/<task_group_id>/", access=Access.ACTIVE, status=204)
def delete_task_group(user: User, task_group_id: int):
    """Delete a task group and its tasks, unless a workflow uses them."""
    task_group = get_task_group_full(user, task_group_id)
    rules.check_not_in_use(task_group)
    rules.delete_task_group(task_group)
    return NO_BODY


@endpoint(
    blueprint,
    "POST",
    "/task-group/<task_group_id>/deactivate/",
    access=Access.ACTIVE,
    response=TaskGroupActivityRead,
    status=202,
)
def deactivate_task_group(user: User, task_group_id: int):
    """Make the task group unusable (and, for collected ones, remove its environment)."""
    task_group = get_task_group_full(user, task_group_id)
    rules.check_no_ongoing_activity(task_group)
    rules.check_no_submitted_jobs(task_group)
    rules.check_active_is(task_group, True)
    return lifecycle.request_deactivation(task_group, set_inactive_now=True)


@endpoint(
    blueprint,
    "POST",
    "/task-group/<task_group_id>/reactivate/",
    access=Access.ACTIVE,
    response=TaskGroupActivityRead,
    status=202,
)
def reactivate_task_group(user: User, task_group_id: int):
    """Make an inactive task group usable again (rebuilding its environment if collected)."""
    task_group = get_task_group_full(user, task_group_id)
    rules.check_active_is(task_group, False)
    rules.check_no_ongoing_activity(task_group)
    rules.check_no_submitted_jobs(task_group)
    return lifecycle.request_reactivation(task_group)


@endpoint(
    blueprint,
    "GET",
    "/task-group/activity/",
    access=Access.ACTIVE,
    query=ActivityListQuery,
    response=list[TaskGroupActivityRead],
)
def list_activities(user: User, query: ActivityListQuery):
    """The user's own task-group activities, filtered."""
    statement = filter_activities(select(TaskGroupActivityV2), query)
    return db.session.scalars(statement.where(TaskGroupActivityV2.user_id == user.id)).all()


@endpoint(
    blueprint,
    "GET",
    "/task-group/activity/<task_group_activity_id>/",
    access=Access.ACTIVE,
    response=TaskGroupActivityRead,
)
def read_activity(user: User, task_group_activity_id: int):
    """One of the user's activities (clients poll it while a collection runs)."""
    activity = db.session.get(TaskGroupActivityV2, task_group_activity_id)
    if activity is None:
        raise ApiError(404, f"TaskGroupActivityV2 {task_group_activity_id} not found")
    if activity.user_id != user.id:
        raise ApiError(403, [f"You are not the owner of TaskGroupActivityV2 {task_group_activity_id}"])
    return activity


def filter_activities(statement, query: ActivityListQuery):
    """Apply the activity filters shared with the admin listing; ordered by id."""
    A = TaskGroupActivityV2
    if query.task_group_activity_id is not None:
        statement = statement.where(A.id == query.task_group_activity_id)
    if query.taskgroupv2_id is not None:
        statement = statement.where(A.taskgroupv2_id == query.taskgroupv2_id)
    if query.pkg_name is not None:
        statement = statement.where(A.pkg_name.icontains(query.pkg_name, autoescape=True))
    if query.status is not None:
        statement = statement.where(A.status == query.status.value)
    if query.action is not None:
        statement = statement.where(A.action == query.action.value)
    if query.timestamp_started_min is not None:
        statement = statement.where(A.timestamp_started >= query.timestamp_started_min)
    return statement.order_by(A.id)
