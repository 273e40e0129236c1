"""`/admin/v2/project/`: every user's projects (`api-v2.md` section 12)."""
from typing import Optional

from flask import Blueprint
from sqlalchemy import select

from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models import LinkUserProjectV2, ProjectV2, User
from fractal_server.http.routing import endpoint
from fractal_server.schemas.projects import ProjectRead
from fractal_server.schemas.validators import QueryModel, RowId

blueprint = Blueprint("admin_projects", __name__, url_prefix="/admin/v2")


class ProjectQuery(QueryModel):
    id: Optional[RowId] = None
    user_id: Optional[RowId] = None


@endpoint(blueprint, "GET", "/project/", access=Access.SUPERUSER, query=ProjectQuery, response=list[ProjectRead])
def list_projects(user: User, query: ProjectQuery):
    """Projects, optionally by id or by linked user."""
    statement = select(ProjectV2)
    if query.id is not None:
        statement = statement.where(ProjectV2.id == query.id)
    if query.user_id is not None:
        linked = select(LinkUserProjectV2.project_id).where(LinkUserProjectV2.user_id == query.user_id)
        statement = statement.where(ProjectV2.id.in_(linked))
    return db.session.scalars(statement.order_by(ProjectV2.id)).all()
