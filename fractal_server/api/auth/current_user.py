"""`/auth/current-user/` and the logouts: what a user may see and do about themselves."""
import os

from flask import Blueprint
from sqlalchemy import select

from fractal_server.api.auth.reads import user_read
from fractal_server.auth.current_user import COOKIE_NAME, Access
from fractal_server.db import db
from fractal_server.db.models import LinkUserGroup, User, UserGroup, UserSettings
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import NO_BODY, empty_response, endpoint
from fractal_server.schemas.users import (
    EmptyBody,
    GroupIdsNamesQuery,
    UserRead,
    UserSettingsReadStrict,
    UserSettingsUpdateStrict,
)
from fractal_server.server_state import current_settings

blueprint = Blueprint("auth_current_user", __name__, url_prefix="/auth")


@endpoint(blueprint, "POST", "/token/logout/", access=Access.ACTIVE, status=204)
def token_logout(user: User):
    """Log out (tokens cannot be revoked: the client forgets its token)."""
    return NO_BODY


@endpoint(blueprint, "POST", "/logout/", access=Access.ACTIVE, status=204)
def cookie_logout(user: User):
    """Log out and clear the login cookie."""
    response = empty_response(204)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="None", secure=True)
    return response


@endpoint(blueprint, "GET", "/current-user/", access=Access.ACTIVE, query=GroupIdsNamesQuery, response=UserRead)
def read_current_user(user: User, query: GroupIdsNamesQuery):
    """The calling user."""
    return user_read(user, with_groups=query.group_ids_names)


@endpoint(blueprint, "PATCH", "/current-user/", access=Access.ACTIVE, body=EmptyBody, response=UserRead)
def patch_current_user(user: User, body: EmptyBody):
    """Users cannot change their own attributes: only `{}` is accepted."""
    return user_read(user, with_groups=True)


def own_settings(user: User) -> UserSettings:
    if user.settings is None:
        raise ApiError(422, f"Error: user '{user.email}' has no settings.")
    return user.settings


@endpoint(blueprint, "GET", "/current-user/settings/", access=Access.ACTIVE, response=UserSettingsReadStrict)
def read_current_user_settings(user: User):
    """The calling user's settings (restricted view)."""
    return own_settings(user)


@endpoint(
    blueprint,
    "PATCH",
    "/current-user/settings/",
    access=Access.ACTIVE,
    body=UserSettingsUpdateStrict,
    response=UserSettingsReadStrict,
)
def patch_current_user_settings(user: User, body: UserSettingsUpdateStrict):
    """Change the calling user's SLURM accounts."""
    settings = own_settings(user)
    for key, value in body.model_dump(exclude_unset=True).items():
        setattr(settings, key, value)
    db.session.commit()
    return settings


@endpoint(blueprint, "GET", "/current-user/allowed-viewer-paths/", access=Access.ACTIVE, response=list[str])
def allowed_viewer_paths(user: User):
    """Folders the calling user may open in a viewer."""
    scheme = current_settings().FRACTAL_VIEWER_AUTHORIZATION_SCHEME
    if scheme == "none":
        return []
    settings = own_settings(user)
    paths = [settings.project_dir] if settings.project_dir else []
    if scheme == "users-folders":
        if settings.slurm_user:
            paths.append(os.path.join(current_settings().FRACTAL_VIEWER_BASE_FOLDER, settings.slurm_user))
        return paths
    group_paths = db.session.scalars(
        select(UserGroup.viewer_paths)
        .join(LinkUserGroup, LinkUserGroup.group_id == UserGroup.id)
        .where(LinkUserGroup.user_id == user.id)
        .order_by(UserGroup.id)
    )
    for group_list in group_paths:
        paths.extend(path for path in group_list if path not in paths)
    return paths
