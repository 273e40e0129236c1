"""Creating users and the default group, as registration and set-db both do."""
import logging
from typing import Optional

from sqlalchemy import func, select

from fractal_server.auth.passwords import hash_password
from fractal_server.db import db
from fractal_server.db.models import LinkUserGroup, User, UserGroup, UserSettings

DEFAULT_GROUP_NAME = "All"

logger = logging.getLogger("fractal_server.auth")


def default_group() -> Optional[UserGroup]:
    return db.session.scalar(select(UserGroup).where(UserGroup.name == DEFAULT_GROUP_NAME))


def ensure_default_group() -> UserGroup:
    group = default_group()
    if group is None:
        group = UserGroup(name=DEFAULT_GROUP_NAME)
        db.session.add(group)
        db.session.commit()
        logger.info("Created the default user group '%s'", DEFAULT_GROUP_NAME)
    return group


def find_user_by_email(email: str) -> Optional[User]:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.lower()))


def create_user(
    email: str,
    password: str,
    *,
    username: Optional[str] = None,
    is_superuser: bool = False,
    is_verified: bool = False,
) -> User:
    """A new active user with empty settings, member of the default group."""
    user = User(
        email=email,
        hashed_password=hash_password(password),
        username=username,
        is_active=True,
        is_superuser=is_superuser,
        is_verified=is_verified,
        settings=UserSettings(slurm_accounts=[]),
    )
    db.session.add(user)
    db.session.flush()
    group = default_group()
    if group is None:
        logger.warning("No '%s' group: user %s joins no group", DEFAULT_GROUP_NAME, email)
    else:
        db.session.add(LinkUserGroup(group_id=group.id, user_id=user.id))
    db.session.commit()
    return user
