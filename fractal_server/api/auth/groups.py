"""`/auth/group/`: user groups, their members, viewer paths and shared settings."""
from flask import Blueprint
from sqlalchemy import delete, select, update

from fractal_server.api.auth.reads import get_group_or_404, get_user_or_404, group_read, membership
from fractal_server.auth.accounts import DEFAULT_GROUP_NAME
from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models import LinkUserGroup, TaskGroupV2, User, UserGroup, UserSettings
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import NO_BODY, endpoint
from fractal_server.schemas.users import (
    UserGroupCreate,
    UserGroupRead,
    UserGroupUpdate,
    UserIdsQuery,
    UserSettingsUpdate,
)

blueprint = Blueprint("auth_groups", __name__, url_prefix="/auth")


@endpoint(blueprint, "GET", "/group/", access=Access.SUPERUSER, query=UserIdsQuery, response=list[UserGroupRead])
def list_groups(user: User, query: UserIdsQuery):
    """All groups, `All` first."""
    groups = db.session.scalars(select(UserGroup).order_by(UserGroup.id))
    return [group_read(group, with_user_ids=query.user_ids) for group in groups]


@endpoint(blueprint, "GET", "/group/<group_id>/", access=Access.SUPERUSER, response=UserGroupRead)
def read_group(user: User, group_id: int):
    """One group with its members."""
    return group_read(get_group_or_404(group_id), with_user_ids=True)


@endpoint(blueprint, "POST", "/group/", access=Access.SUPERUSER, body=UserGroupCreate, response=UserGroupRead, status=201)
def create_group(user: User, body: UserGroupCreate):
    """Create an empty group."""
    if db.session.scalar(select(UserGroup.id).where(UserGroup.name == body.name)) is not None:
        raise ApiError(422, "A group with the same name already exists")
    group = UserGroup(name=body.name, viewer_paths=body.viewer_paths)
    db.session.add(group)
    db.session.commit()
    return group_read(group, with_user_ids=True)


@endpoint(blueprint, "PATCH", "/group/<group_id>/", access=Access.SUPERUSER, body=UserGroupUpdate, response=UserGroupRead)
def patch_group(user: User, group_id: int, body: UserGroupUpdate):
    """Replace the group's viewer paths (the name cannot change)."""
    group = get_group_or_404(group_id)
    if "viewer_paths" in body.model_fields_set:
        group.viewer_paths = body.viewer_paths
        db.session.commit()
    return group_read(group, with_user_ids=True)


@endpoint(blueprint, "DELETE", "/group/<group_id>/", access=Access.SUPERUSER, status=204)
def delete_group(user: User, group_id: int):
    """Delete a group; its task groups become private to their owners."""
    group = get_group_or_404(group_id)
    if group.name == DEFAULT_GROUP_NAME:
        raise ApiError(422, f"Cannot delete default UserGroup '{DEFAULT_GROUP_NAME}'.")
    db.session.execute(delete(LinkUserGroup).where(LinkUserGroup.group_id == group_id))
    db.session.execute(
        update(TaskGroupV2).where(TaskGroupV2.user_group_id == group_id).values(user_group_id=None)
    )
    db.session.delete(group)
    db.session.commit()
    return NO_BODY


@endpoint(blueprint, "PATCH", "/group/<group_id>/user-settings/", access=Access.SUPERUSER, body=UserSettingsUpdate)
def patch_group_user_settings(user: User, group_id: int, body: UserSettingsUpdate):
    """Apply the given settings to every member of the group."""
    get_group_or_404(group_id)
    changes = body.model_dump(exclude_unset=True)
    if changes:
        member_settings = (
            select(User.user_settings_id)
            .join(LinkUserGroup, LinkUserGroup.user_id == User.id)
            .where(LinkUserGroup.group_id == group_id)
        )
        db.session.execute(
            update(UserSettings).where(UserSettings.id.in_(member_settings)).values(**changes)
        )
        db.session.commit()
    return NO_BODY


@endpoint(blueprint, "POST", "/group/<group_id>/add-user/<user_id>/", access=Access.SUPERUSER, response=UserGroupRead)
def add_user_to_group(user: User, group_id: int, user_id: int):
    """Make a user member of the group."""
    group = get_group_or_404(group_id)
    member = get_user_or_404(user_id)
    if membership(user_id, group_id) is not None:
        raise ApiError(422, f"User '{member.email}' is already a member of group {group_id}.")
    db.session.add(LinkUserGroup(user_id=user_id, group_id=group_id))
    db.session.commit()
    return group_read(group, with_user_ids=True)


@endpoint(blueprint, "POST", "/group/<group_id>/remove-user/<user_id>/", access=Access.SUPERUSER, response=UserGroupRead)
def remove_user_from_group(user: User, group_id: int, user_id: int):
    """Remove a user from the group (never from `All`)."""
    group = get_group_or_404(group_id)
    member = get_user_or_404(user_id)
    if group.name == DEFAULT_GROUP_NAME:
        raise ApiError(422, ["Cannot remove user from 'All' group."])
    link = membership(user_id, group_id)
    if link is None:
        raise ApiError(422, f"User '{member.email}' is not a member of group {group_id}.")
    db.session.delete(link)
    db.session.commit()
    return group_read(group, with_user_ids=True)
