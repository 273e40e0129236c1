"""Turning user and group rows into the shapes the `/auth` tree returns."""
from typing import Optional

from sqlalchemy import select

from fractal_server.auth.accounts import DEFAULT_GROUP_NAME
from fractal_server.db import db
from fractal_server.db.models import LinkUserGroup, User, UserGroup
from fractal_server.http.errors import ApiError
from fractal_server.schemas.users import OAuthAccountRead, UserGroupRead, UserRead


def user_read(user: User, *, with_groups: bool) -> UserRead:
    return UserRead(
        id=user.id,
        email=user.email,
        is_active=user.is_active,
        is_superuser=user.is_superuser,
        is_verified=user.is_verified,
        username=user.username,
        group_ids_names=group_ids_names(user.id) if with_groups else None,
        oauth_accounts=[
            OAuthAccountRead(id=a.id, account_email=a.account_email, oauth_name=a.oauth_name)
            for a in user.oauth_accounts
        ],
    )


def group_ids_names(user_id: int) -> list[tuple[int, str]]:
    """The user's groups in membership order, the default group first."""
    rows = db.session.execute(
        select(UserGroup.id, UserGroup.name)
        .join(LinkUserGroup, LinkUserGroup.group_id == UserGroup.id)
        .where(LinkUserGroup.user_id == user_id)
        .order_by(LinkUserGroup.timestamp_created, UserGroup.id)
    ).all()
    pairs = [(group_id, name) for group_id, name in rows]
    pairs.sort(key=lambda pair: pair[1] != DEFAULT_GROUP_NAME)
    return pairs


def group_read(group: UserGroup, *, with_user_ids: bool) -> UserGroupRead:
    return UserGroupRead(
        id=group.id,
        name=group.name,
        timestamp_created=group.timestamp_created,
        user_ids=member_ids(group.id) if with_user_ids else None,
        viewer_paths=group.viewer_paths,
    )


def member_ids(group_id: int) -> list[int]:
    return list(
        db.session.scalars(
            select(LinkUserGroup.user_id)
            .where(LinkUserGroup.group_id == group_id)
            .order_by(LinkUserGroup.timestamp_created, LinkUserGroup.user_id)
        )
    )


def get_user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise ApiError(404, f"User {user_id} not found.")
    return user


def get_group_or_404(group_id: int) -> UserGroup:
    group = db.session.get(UserGroup, group_id)
    if group is None:
        raise ApiError(404, f"UserGroup {group_id} not found.")
    return group


def membership(user_id: int, group_id: int) -> Optional[LinkUserGroup]:
    return db.session.get(LinkUserGroup, (group_id, user_id))
