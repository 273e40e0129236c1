"""Rules on where task groups live and when they may change (`api-v2.md` 0.6, 9).

Shared by task creation, task collection and the task-group endpoints of
users and administrators:

* user-group resolution of a new task group (`private` / `user_group_id`);
* uniqueness of `(pkg_name, version)` per owner and per user group;
* the guards of deletion, deactivation and reactivation.
"""
from typing import Optional

from sqlalchemy import select

from fractal_server.auth.accounts import DEFAULT_GROUP_NAME, default_group
from fractal_server.db import db
from fractal_server.db.models.jobs import submitted_job_ids
from fractal_server.db.models import (
    JobV2,
    LinkUserGroup,
    TaskGroupActivityV2,
    TaskGroupV2,
    TaskV2,
    User,
    UserGroup,
    WorkflowTaskV2,
)
from fractal_server.http.errors import ApiError

# --- Which user group a task group belongs to ---


def check_user_in_group(user_id: int, user_group_id: int) -> UserGroup:
    """The user group, if it exists (else 404) and the user is a member (else 403)."""
    group = db.session.get(UserGroup, user_group_id)
    if group is None:
        raise ApiError(404, f"UserGroup {user_group_id} not found")
    if db.session.get(LinkUserGroup, (user_group_id, user_id)) is None:
        raise ApiError(403, f"User {user_id} does not belong to UserGroup {user_group_id}")
    return group


def resolve_user_group_id(user: User, private: bool, user_group_id: Optional[int]) -> Optional[int]:
    """The `user_group_id` of a new task group: null if private, else the given or default group."""
    if private and user_group_id is not None:
        raise ApiError(422, f"Cannot set both user_group_id={user_group_id} and private=True")
    if private:
        return None
    if user_group_id is None:
        group = default_group()
        if group is None:
            raise ApiError(404, f"User group '{DEFAULT_GROUP_NAME}' not found.")
        return group.id
    check_user_in_group(user.id, user_group_id)
    return user_group_id


# --- Uniqueness of (pkg_name, version) ---


def check_task_group_unique(
    user: User, pkg_name: str, version: Optional[str], user_group_id: Optional[int]
) -> None:
    """422 if the owner, or the target user group, already has this package version."""
    check_unique_for_user(user, pkg_name, version)
    check_unique_for_group(user_group_id, pkg_name, version)


def check_unique_for_user(user: User, pkg_name: str, version: Optional[str]) -> None:
    duplicates = _same_package(pkg_name, version, TaskGroupV2.user_id == user.id)
    message = (
        f"User '{user.email}' already owns a task group "
        f"with name='{pkg_name}' and version={version!r}."
    )
    _refuse_duplicates(duplicates, message)


def check_unique_for_group(user_group_id: Optional[int], pkg_name: str, version: Optional[str]) -> None:
    """No check for private task groups (`user_group_id` null)."""
    if user_group_id is None:
        return
    duplicates = _same_package(pkg_name, version, TaskGroupV2.user_group_id == user_group_id)
    if not duplicates:
        return
    group_name = db.session.get(UserGroup, user_group_id).name
    message = (
        f"UserGroup {group_name} already owns a task group "
        f"with pkg_name='{pkg_name}' and version={version!r}."
    )
    _refuse_duplicates(duplicates, message)


def _same_package(pkg_name: str, version: Optional[str], owner_condition) -> list[TaskGroupV2]:
    same_version = TaskGroupV2.version.is_(None) if version is None else TaskGroupV2.version == version
    query = select(TaskGroupV2).where(owner_condition, TaskGroupV2.pkg_name == pkg_name, same_version)
    return list(db.session.scalars(query.order_by(TaskGroupV2.id)))


def _refuse_duplicates(duplicates: list[TaskGroupV2], message: str) -> None:
    if not duplicates:
        return
    if len(duplicates) > 1:
        raise ApiError(422, f"Invalid state: {len(duplicates)} task groups already exist. {message}")
    raise ApiError(422, message + _collection_note(duplicates[0]))


def _collection_note(task_group: TaskGroupV2) -> str:
    """Points at the collection of the conflicting task group, if there is one."""
    activity = db.session.scalar(
        select(TaskGroupActivityV2)
        .where(
            TaskGroupActivityV2.taskgroupv2_id == task_group.id,
            TaskGroupActivityV2.action == "collect",
        )
        .order_by(TaskGroupActivityV2.id)
    )
    if activity is None:
        return ""
    return (
        f"\nNote:There exists another task-group collection (activity ID={activity.id}) "
        f"for this task group (ID={task_group.id}), with status '{activity.status}'."
    )


# --- Guards of deletion, deactivation and reactivation ---


def check_not_in_use(task_group: TaskGroupV2) -> None:
    """422 if a workflow task uses one of the group's tasks."""
    task_id = db.session.scalar(
        select(WorkflowTaskV2.task_id)
        .join(TaskV2, TaskV2.id == WorkflowTaskV2.task_id)
        .where(TaskV2.taskgroupv2_id == task_group.id)
        .order_by(WorkflowTaskV2.task_id)
    )
    if task_id is not None:
        raise ApiError(422, f"TaskV2 {task_id} is still in use")


def delete_task_group(task_group: TaskGroupV2) -> None:
    """Delete the group and its tasks; its activities stay, detached. Files stay on disk."""
    for activity in db.session.scalars(
        select(TaskGroupActivityV2).where(TaskGroupActivityV2.taskgroupv2_id == task_group.id)
    ):
        activity.taskgroupv2_id = None
    db.session.delete(task_group)
    db.session.commit()


def check_no_ongoing_activity(task_group: TaskGroupV2) -> None:
    ongoing = list(
        db.session.scalars(
            select(TaskGroupActivityV2)
            .where(
                TaskGroupActivityV2.taskgroupv2_id == task_group.id,
                TaskGroupActivityV2.status == "ongoing",
            )
            .order_by(TaskGroupActivityV2.id)
        )
    )
    if ongoing:
        lines = [
            f"{number}) Action={a.action}, status={a.status}, timestamp_started={a.timestamp_started}"
            for number, a in enumerate(ongoing, start=1)
        ]
        raise ApiError(422, "Found ongoing activities for the same task-group:\n" + "\n".join(lines))


def check_no_submitted_jobs(task_group: TaskGroupV2) -> None:
    """422 if a `submitted` job runs, within its task range, a task of the group."""
    jobs_using_group = (
        select(JobV2.id)
        .join(WorkflowTaskV2, WorkflowTaskV2.workflow_id == JobV2.workflow_id)
        .join(TaskV2, TaskV2.id == WorkflowTaskV2.task_id)
        .where(
            TaskV2.taskgroupv2_id == task_group.id,
            WorkflowTaskV2.order >= JobV2.first_task_index,
            WorkflowTaskV2.order <= JobV2.last_task_index,
        )
    )
    job_ids = submitted_job_ids(JobV2.id.in_(jobs_using_group))
    if job_ids:
        raise ApiError(422, f"Cannot act on task group because {len(job_ids)} submitted jobs use its tasks.")


def check_active_is(task_group: TaskGroupV2, expected: bool) -> None:
    """422 unless `task_group.active == expected` (deactivate needs True, reactivate False)."""
    if task_group.active != expected:
        verb = "deactivate" if expected else "reactivate"
        raise ApiError(422, f"Cannot {verb} a task group with task_group.active={task_group.active}.")
