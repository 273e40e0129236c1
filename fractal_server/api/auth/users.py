"""`/auth/register/` and `/auth/users/`: user management by superusers."""
from flask import Blueprint
from sqlalchemy import delete, select

from fractal_server.api.auth.reads import get_user_or_404, user_read
from fractal_server.auth.accounts import DEFAULT_GROUP_NAME, create_user, find_user_by_email
from fractal_server.auth.current_user import Access
from fractal_server.auth.passwords import hash_password
from fractal_server.db import db
from fractal_server.db.models import LinkUserGroup, User, UserGroup, UserSettings
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import endpoint
from fractal_server.schemas.users import (
    GroupIdsNamesDefaultTrueQuery,
    UserCreate,
    UserRead,
    UserSetGroups,
    UserSettingsRead,
    UserSettingsUpdate,
    UserUpdate,
)

blueprint = Blueprint("auth_users", __name__, url_prefix="/auth")

PASSWORD_MIN_LENGTH = 4
PASSWORD_MAX_LENGTH = 100


def check_password_length(password: str, code: str) -> None:
    if len(password) < PASSWORD_MIN_LENGTH:
        reason = f"The password is too short (minimum length: {PASSWORD_MIN_LENGTH})."
    elif len(password) > PASSWORD_MAX_LENGTH:
        reason = f"The password is too long (maximum length: {PASSWORD_MAX_LENGTH})."
    else:
        return
    raise ApiError(400, {"code": code, "reason": reason})


@endpoint(
    blueprint, "POST", "/register/", access=Access.SUPERUSER, body=UserCreate, response=UserRead, status=201,
    errors=(400,),
)
def register(user: User, body: UserCreate):
    """Create a user: active, not superuser, not verified, member of `All`."""
    check_password_length(body.password, "REGISTER_INVALID_PASSWORD")
    if find_user_by_email(body.email) is not None:
        raise ApiError(400, "REGISTER_USER_ALREADY_EXISTS")
    new_user = create_user(body.email, body.password, username=body.username)
    return user_read(new_user, with_groups=False)


@endpoint(blueprint, "GET", "/users/", access=Access.SUPERUSER, response=list[UserRead])
def list_users(user: User):
    """All users."""
    users = db.session.scalars(select(User).order_by(User.id)).unique()
    return [user_read(item, with_groups=False) for item in users]


@endpoint(
    blueprint,
    "GET",
    "/users/<user_id>/",
    access=Access.SUPERUSER,
    query=GroupIdsNamesDefaultTrueQuery,
    response=UserRead,
)
def read_user(user: User, user_id: int, query: GroupIdsNamesDefaultTrueQuery):
    """One user."""
    return user_read(get_user_or_404(user_id), with_groups=query.group_ids_names)


@endpoint(
    blueprint, "PATCH", "/users/<user_id>/", access=Access.SUPERUSER, body=UserUpdate, response=UserRead,
    errors=(400,),
)
def patch_user(user: User, user_id: int, body: UserUpdate):
    """Change a user's e-mail, password, username or roles."""
    target = get_user_or_404(user_id)
    changes = body.model_dump(exclude_unset=True)
    if "password" in changes:
        check_password_length(changes["password"], "UPDATE_USER_INVALID_PASSWORD")
        target.hashed_password = hash_password(changes.pop("password"))
    new_email = changes.pop("email", None)
    if new_email is not None and new_email != target.email:
        other = find_user_by_email(new_email)
        if other is not None and other.id != target.id:
            raise ApiError(400, "UPDATE_USER_EMAIL_ALREADY_EXISTS")
        target.email = new_email
        changes.setdefault("is_verified", False)
    for key, value in changes.items():
        setattr(target, key, value)
    db.session.commit()
    return user_read(target, with_groups=True)


@endpoint(
    blueprint,
    "POST",
    "/users/<user_id>/set-groups/",
    access=Access.SUPERUSER,
    body=UserSetGroups,
    response=UserRead,
)
def set_user_groups(user: User, user_id: int, body: UserSetGroups):
    """Make the user's memberships exactly the given groups (which include `All`)."""
    target = get_user_or_404(user_id)
    wanted = set(body.group_ids)
    groups = db.session.scalars(select(UserGroup).where(UserGroup.id.in_(wanted))).all()
    if len(groups) != len(wanted):
        raise ApiError(404, f"Some UserGroups in {body.group_ids} do not exist.")
    if DEFAULT_GROUP_NAME not in {group.name for group in groups}:
        raise ApiError(422, ["Cannot remove user from 'All' group."])
    current = set(
        db.session.scalars(select(LinkUserGroup.group_id).where(LinkUserGroup.user_id == user_id))
    )
    db.session.execute(
        delete(LinkUserGroup).where(
            LinkUserGroup.user_id == user_id, LinkUserGroup.group_id.not_in(wanted)
        )
    )
    for group_id in body.group_ids:
        if group_id not in current:
            db.session.add(LinkUserGroup(user_id=user_id, group_id=group_id))
    db.session.commit()
    return user_read(target, with_groups=True)


def settings_of(user_id: int) -> UserSettings:
    target = get_user_or_404(user_id)
    if target.settings is None:
        target.settings = UserSettings(slurm_accounts=[])
        db.session.commit()
    return target.settings


@endpoint(blueprint, "GET", "/users/<user_id>/settings/", access=Access.SUPERUSER, response=UserSettingsRead)
def read_user_settings(user: User, user_id: int):
    """A user's settings (full view)."""
    return settings_of(user_id)


@endpoint(
    blueprint,
    "PATCH",
    "/users/<user_id>/settings/",
    access=Access.SUPERUSER,
    body=UserSettingsUpdate,
    response=UserSettingsRead,
)
def patch_user_settings(user: User, user_id: int, body: UserSettingsUpdate):
    """Change a user's settings; only the keys given are touched."""
    settings = settings_of(user_id)
    for key, value in body.model_dump(exclude_unset=True).items():
        setattr(settings, key, value)
    db.session.commit()
    return settings


