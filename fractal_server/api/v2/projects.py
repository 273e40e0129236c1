"""`/api/v2/project/`: a user's projects."""
from flask import Blueprint
from sqlalchemy import select

from fractal_server.api.v2.access import get_project, user_project_ids
from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models.jobs import submitted_job_ids
from fractal_server.db.models import JobV2, LinkUserProjectV2, ProjectV2, User
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import NO_BODY, endpoint
from fractal_server.schemas.projects import ProjectCreate, ProjectRead, ProjectUpdate

blueprint = Blueprint("v2_projects", __name__, url_prefix="/api/v2")


def check_name_free(user: User, name: str) -> None:
    taken = db.session.scalar(
        select(ProjectV2.id).where(ProjectV2.name == name, ProjectV2.id.in_(user_project_ids(user)))
    )
    if taken is not None:
        raise ApiError(422, f"Project name ({name}) already in use")


@endpoint(blueprint, "GET", "/project/", access=Access.ACTIVE, response=list[ProjectRead])
def list_projects(user: User):
    """The user's projects."""
    return db.session.scalars(
        select(ProjectV2).where(ProjectV2.id.in_(user_project_ids(user))).order_by(ProjectV2.id)
    ).all()


@endpoint(blueprint, "POST", "/project/", access=Access.ACTIVE, body=ProjectCreate, response=ProjectRead, status=201)
def create_project(user: User, body: ProjectCreate):
    """Create a project owned by the user."""
    check_name_free(user, body.name)
    project = ProjectV2(name=body.name)
    db.session.add(project)
    db.session.flush()
    db.session.add(LinkUserProjectV2(project_id=project.id, user_id=user.id))
    db.session.commit()
    return project


@endpoint(blueprint, "GET", "/project/<project_id>/", access=Access.ACTIVE, response=ProjectRead)
def read_project(user: User, project_id: int):
    """One project."""
    return get_project(user, project_id)


@endpoint(blueprint, "PATCH", "/project/<project_id>/", access=Access.ACTIVE, body=ProjectUpdate, response=ProjectRead)
def patch_project(user: User, project_id: int, body: ProjectUpdate):
    """Rename a project."""
    project = get_project(user, project_id)
    if body.name is not None:
        check_name_free(user, body.name)
        project.name = body.name
        db.session.commit()
    return project


@endpoint(blueprint, "DELETE", "/project/<project_id>/", access=Access.ACTIVE, status=204)
def delete_project(user: User, project_id: int):
    """Delete a project with its datasets and workflows; its jobs stay, detached."""
    project = get_project(user, project_id)
    active = submitted_job_ids(JobV2.project_id == project_id)
    if active:
        ids = ", ".join(map(str, active))
        raise ApiError(422, f"Cannot delete project {project_id} because it is linked to active job(s) {ids}.")
    db.session.delete(project)
    db.session.commit()
    return NO_BODY
