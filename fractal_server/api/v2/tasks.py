"""`/api/v2/task/`: single tasks (`api-v2.md` section 8).

A task created here gets its own task group of origin `other`; tasks are
deleted only together with their task group.
"""
from typing import Optional

from flask import Blueprint
from sqlalchemy import func, select

from fractal_server.api.v2.task_access import get_task_full, get_task_read, readable_task_groups_query
from fractal_server.task_group_rules import check_task_group_unique, resolve_user_group_id
from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models import TaskGroupV2, TaskV2, User
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import endpoint
from fractal_server.schemas.tasks import (
    TaskCreate,
    TaskCreateQuery,
    TaskListQuery,
    TaskRead,
    TaskUpdate,
    without_args_schemas,
)

blueprint = Blueprint("v2_tasks", __name__, url_prefix="/api/v2")


def filter_by_catalog(statement, category: Optional[str], modality: Optional[str], author: Optional[str]):
    """Category and modality: case-insensitive equality; author: case-insensitive substring."""
    if category is not None:
        statement = statement.where(func.lower(TaskV2.category) == category.lower())
    if modality is not None:
        statement = statement.where(func.lower(TaskV2.modality) == modality.lower())
    if author is not None:
        statement = statement.where(TaskV2.authors.icontains(author, autoescape=True))
    return statement


@endpoint(blueprint, "GET", "/task/", access=Access.ACTIVE, query=TaskListQuery, response=list[TaskRead])
def list_tasks(user: User, query: TaskListQuery):
    """Tasks of the task groups the user can read, active or not."""
    readable_ids = readable_task_groups_query(user).with_only_columns(TaskGroupV2.id).order_by(None)
    statement = select(TaskV2).where(TaskV2.taskgroupv2_id.in_(readable_ids))
    statement = filter_by_catalog(statement, query.category, query.modality, query.author)
    tasks = [TaskRead.model_validate(t, from_attributes=True) for t in db.session.scalars(statement.order_by(TaskV2.id))]
    return tasks if query.args_schema else [without_args_schemas(t) for t in tasks]


@endpoint(blueprint, "GET", "/task/<task_id>/", access=Access.ACTIVE, response=TaskRead)
def read_task(user: User, task_id: int):
    """One task."""
    return get_task_read(user, task_id)


@endpoint(
    blueprint,
    "POST",
    "/task/",
    access=Access.VERIFIED,
    query=TaskCreateQuery,
    body=TaskCreate,
    response=TaskRead,
    status=201,
)
def create_task(user: User, query: TaskCreateQuery, body: TaskCreate):
    """Create a task, in a new task group of origin `other`."""
    user_group_id = resolve_user_group_id(user, query.private, query.user_group_id)
    check_schemas_match_type(body)
    check_task_group_unique(user, body.name, body.version, user_group_id)
    fields = body.model_dump()
    fields["meta_parallel"] = fields["meta_parallel"] or {}
    fields["meta_non_parallel"] = fields["meta_non_parallel"] or {}
    task = TaskV2(type=body.task_type, **fields)
    task_group = TaskGroupV2(
        origin="other",
        pkg_name=body.name,
        version=body.version,
        user_id=user.id,
        user_group_id=user_group_id,
        active=True,
        task_list=[task],
    )
    db.session.add(task_group)
    db.session.commit()
    return task


def check_schemas_match_type(body: TaskCreate) -> None:
    """A parallel task has no non-parallel schema/meta, and vice versa (messages sic)."""
    if body.task_type == "parallel" and (
        body.args_schema_non_parallel is not None or body.meta_non_parallel is not None
    ):
        raise ApiError(
            422,
            "Cannot set `TaskV2.args_schema_non_parallel` or "
            "`TaskV2.args_schema_non_parallel` if TaskV2 is parallel",
        )
    if body.task_type == "non_parallel" and (
        body.args_schema_parallel is not None or body.meta_parallel is not None
    ):
        raise ApiError(
            422,
            "Cannot set `TaskV2.args_schema_parallel` or "
            "`TaskV2.args_schema_parallel` if TaskV2 is non_parallel",
        )


@endpoint(blueprint, "PATCH", "/task/<task_id>/", access=Access.VERIFIED, body=TaskUpdate, response=TaskRead)
def patch_task(user: User, task_id: int, body: TaskUpdate):
    """Change commands, types and descriptive fields of a task the user owns."""
    task = get_task_full(user, task_id)
    changes = body.model_dump(exclude_unset=True)
    if "command_parallel" in changes and task.type == "non_parallel":
        raise ApiError(422, "Cannot set an unset `command_parallel`.")
    if "command_non_parallel" in changes and task.type == "parallel":
        raise ApiError(422, "Cannot set an unset `command_non_parallel`.")
    for key, value in changes.items():
        setattr(task, key, value)
    db.session.commit()
    return task


@endpoint(blueprint, "DELETE", "/task/<task_id>/", access=Access.ACTIVE, status=405)
def delete_task(user: User, task_id: int):
    """Not allowed: tasks are deleted with their task group."""
    raise ApiError(405, "Cannot delete single tasks, please operate directly on task groups.")
