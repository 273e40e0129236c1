"""`/admin/v2/task/`: find tasks and the workflows that use them (`api-v2.md` section 12)."""
from flask import Blueprint
from sqlalchemy import func, select

from fractal_server.api.v2.tasks import filter_by_catalog
from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models import LinkUserProjectV2, TaskV2, User, WorkflowTaskV2, WorkflowV2
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import endpoint
from fractal_server.schemas.tasks import AdminTaskListQuery, ProjectUser, TaskInfo, TaskMinimal, TaskRelationship

blueprint = Blueprint("admin_tasks", __name__, url_prefix="/admin/v2")


@endpoint(blueprint, "GET", "/task/", access=Access.SUPERUSER, query=AdminTaskListQuery, response=list[TaskInfo])
def list_tasks(user: User, query: AdminTaskListQuery):
    """Tasks matching the filters, each with the workflows that contain it."""
    statement = _filtered(select(TaskV2), query)
    count = db.session.scalar(statement.with_only_columns(func.count(TaskV2.id)))
    if count > query.max_number_of_results:
        raise ApiError(
            422, f"Too many Tasks ({count} > {query.max_number_of_results}). Please add more query filters."
        )
    tasks = db.session.scalars(statement.order_by(TaskV2.id)).all()
    return [
        TaskInfo(task=TaskMinimal.model_validate(task, from_attributes=True), relationships=_relationships(task.id))
        for task in tasks
    ]


def _filtered(statement, query: AdminTaskListQuery):
    if query.id is not None:
        statement = statement.where(TaskV2.id == query.id)
    if query.source is not None:
        statement = statement.where(TaskV2.source.icontains(query.source, autoescape=True))
    if query.version is not None:
        statement = statement.where(TaskV2.version == query.version)
    if query.name is not None:
        statement = statement.where(TaskV2.name.icontains(query.name, autoescape=True))
    return filter_by_catalog(statement, query.category, query.modality, query.author)


def _relationships(task_id: int) -> list[TaskRelationship]:
    """One item per workflow containing the task, by workflow id."""
    workflows = db.session.scalars(
        select(WorkflowV2)
        .where(WorkflowV2.id.in_(select(WorkflowTaskV2.workflow_id).where(WorkflowTaskV2.task_id == task_id)))
        .order_by(WorkflowV2.id)
    ).all()
    return [
        TaskRelationship(
            workflow_id=workflow.id,
            workflow_name=workflow.name,
            project_id=workflow.project_id,
            project_name=workflow.project.name,
            project_users=_project_users(workflow.project_id),
        )
        for workflow in workflows
    ]


def _project_users(project_id: int) -> list[ProjectUser]:
    rows = db.session.execute(
        select(User.id, User.email)
        .join(LinkUserProjectV2, LinkUserProjectV2.user_id == User.id)
        .where(LinkUserProjectV2.project_id == project_id)
        .order_by(User.id)
    ).all()
    return [ProjectUser(id=user_id, email=email) for user_id, email in rows]
