"""Who may use which task group and task (`api-v2.md` section 0.6).

Read access: the owner of the task group, or a member of its user group.
Full access: the owner only. Access to a task is access to its task group.
The 403 messages are wrapped in a one-element list, as in the reference.
"""
from sqlalchemy import or_, select

from fractal_server.db import db
from fractal_server.db.models import LinkUserGroup, TaskGroupV2, TaskV2, User
from fractal_server.http.errors import ApiError


def user_group_ids_query(user_id: int):
    """A subquery: ids of the user groups the user belongs to."""
    return select(LinkUserGroup.group_id).where(LinkUserGroup.user_id == user_id)


def user_group_ids(user_id: int) -> list[int]:
    """Ids of the user's groups, oldest membership first."""
    return list(
        db.session.scalars(
            user_group_ids_query(user_id).order_by(
                LinkUserGroup.timestamp_created, LinkUserGroup.group_id
            )
        )
    )


def readable_task_groups_query(user: User):
    """A `select(TaskGroupV2)` of the groups the user can read (active or not), by id."""
    return (
        select(TaskGroupV2)
        .where(
            or_(
                TaskGroupV2.user_id == user.id,
                TaskGroupV2.user_group_id.in_(user_group_ids_query(user.id)),
            )
        )
        .order_by(TaskGroupV2.id)
    )


def can_read_task_group(user: User, task_group: TaskGroupV2) -> bool:
    """Owner, or member of the task group's user group."""
    if task_group.user_id == user.id:
        return True
    if task_group.user_group_id is None:
        return False
    link = db.session.get(LinkUserGroup, (task_group.user_group_id, user.id))
    return link is not None


def _task_group_or_404(task_group_id: int) -> TaskGroupV2:
    task_group = None if task_group_id is None else db.session.get(TaskGroupV2, task_group_id)
    if task_group is None:
        raise ApiError(404, f"TaskGroupV2 {task_group_id} not found")
    return task_group


def get_task_group_read(user: User, task_group_id: int) -> TaskGroupV2:
    """The task group, if the user has read access: else 404 / 403."""
    task_group = _task_group_or_404(task_group_id)
    if not can_read_task_group(user, task_group):
        raise ApiError(403, [f"Current user has no read access to TaskGroupV2 {task_group_id}."])
    return task_group


def get_task_group_full(user: User, task_group_id: int) -> TaskGroupV2:
    """The task group, if the user owns it: else 404 / 403."""
    task_group = _task_group_or_404(task_group_id)
    if task_group.user_id != user.id:
        raise ApiError(403, [f"Current user has no full access to TaskGroupV2 {task_group_id}."])
    return task_group


def _task_or_404(task_id: int) -> TaskV2:
    task = db.session.get(TaskV2, task_id)
    if task is None:
        raise ApiError(404, f"TaskV2 {task_id} not found")
    return task


def check_active(task: TaskV2, task_group: TaskGroupV2) -> None:
    """422 if the task's group is not active."""
    if not task_group.active:
        raise ApiError(422, f"Error: task {task.id} ({task.name}) is not active.")


def get_task_read(user: User, task_id: int, require_active: bool = False) -> TaskV2:
    """The task, if the user can read its task group: else 404 / 403 (/ 422 if inactive)."""
    task = _task_or_404(task_id)
    task_group = get_task_group_read(user, task.taskgroupv2_id)
    if require_active:
        check_active(task, task_group)
    return task


def get_task_full(user: User, task_id: int, require_active: bool = False) -> TaskV2:
    """The task, if the user owns its task group: else 404 / 403 (/ 422 if inactive)."""
    task = _task_or_404(task_id)
    task_group = get_task_group_full(user, task.taskgroupv2_id)
    if require_active:
        check_active(task, task_group)
    return task

