from datetime import datetime
from typing import Optional

from sqlalchemy import DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fractal_server.db import JSONDocument, db, utc_now


class UserSettings(db.Model):
    """Per-user settings that runner backends need (SLURM user, SSH host...)."""

    __tablename__ = "user_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    slurm_accounts: Mapped[list] = mapped_column(JSONDocument, default=list)
    ssh_host: Mapped[Optional[str]]
    ssh_username: Mapped[Optional[str]]
    ssh_private_key_path: Mapped[Optional[str]]
    ssh_tasks_dir: Mapped[Optional[str]]
    ssh_jobs_dir: Mapped[Optional[str]]
    slurm_user: Mapped[Optional[str]]
    project_dir: Mapped[Optional[str]]


class User(db.Model):
    __tablename__ = "user_oauth"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    hashed_password: Mapped[str] = mapped_column(String(1024))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_superuser: Mapped[bool] = mapped_column(default=False)
    is_verified: Mapped[bool] = mapped_column(default=False)
    username: Mapped[Optional[str]]
    user_settings_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("user_settings.id", ondelete="SET NULL")
    )

    settings: Mapped[Optional[UserSettings]] = relationship(lazy="joined")
    oauth_accounts: Mapped[list["OAuthAccount"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="OAuthAccount.id"
    )


class OAuthAccount(db.Model):
    """A link between a local user and an account at an OAuth provider."""

    __tablename__ = "oauthaccount"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_oauth.id", ondelete="CASCADE"))
    oauth_name: Mapped[str] = mapped_column(String(100), index=True)
    access_token: Mapped[str] = mapped_column(String(4096))
    expires_at: Mapped[Optional[int]]
    refresh_token: Mapped[Optional[str]] = mapped_column(String(4096))
    account_id: Mapped[str] = mapped_column(String(320), index=True)
    account_email: Mapped[str] = mapped_column(String(320))

    user: Mapped[User] = relationship(back_populates="oauth_accounts")


class UserGroup(db.Model):
    __tablename__ = "usergroup"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    timestamp_created: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now
    )
    viewer_paths: Mapped[list] = mapped_column(
        JSONDocument, default=list, server_default="[]"
    )


class LinkUserGroup(db.Model):
    """Membership of a user in a group; the timestamp orders a user's groups."""

    __tablename__ = "linkusergroup"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("usergroup.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_oauth.id", ondelete="CASCADE"), primary_key=True
    )
    timestamp_created: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now, server_default=func.now()
    )
