"""`fractalctl set-db`: schema migrations and the initial data."""
import logging

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import select

from fractal_server.auth.accounts import create_user, ensure_default_group, find_user_by_email
from fractal_server.auth.passwords import verify_password
from fractal_server.config.errors import FractalConfigurationError
from fractal_server.config.settings import Settings
from fractal_server.db import db
from fractal_server.db.models import User

logger = logging.getLogger("fractal_server.db")

BUILTIN_ADMIN_PASSWORD = Settings.model_fields["FRACTAL_DEFAULT_ADMIN_PASSWORD"].default


def upgrade_schema(app: Flask) -> None:
    """Apply every migration up to the latest one (idempotent)."""
    with app.app_context():
        directory = app.extensions["migrate"].directory
        logger.info("Applying database migrations from %s", directory)
        upgrade(directory=directory)
        logger.info("Database schema is up to date")


def schema_is_current(app: Flask) -> bool:
    """Whether the database is at the latest migration."""
    with app.app_context():
        script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
        with db.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
        return set(current) == set(script.get_heads())


def prepare_database(app: Flask, *, manage: bool) -> None:
    """Before serving: set the database up (`manage`) or check it is ready."""
    if manage:
        upgrade_schema(app)
        create_initial_data(app, app.extensions["fractal"].settings)
    elif not schema_is_current(app):
        raise FractalConfigurationError(
            "the database schema is not up to date: run `fractalctl set-db` first"
        )
    warn_if_default_admin_password(app)


def warn_if_default_admin_password(app: Flask) -> None:
    """Loudly, while the first superuser still has the built-in password."""
    with app.app_context():
        admin = find_user_by_email(app.extensions["fractal"].settings.FRACTAL_DEFAULT_ADMIN_EMAIL)
        if admin is not None and verify_password(BUILTIN_ADMIN_PASSWORD, admin.hashed_password):
            logger.warning(
                "SECURITY WARNING: user %s still has the default password: change it now "
                "(PATCH /auth/users/%s/ or `fractal user edit`).",
                admin.email,
                admin.id,
            )


def create_initial_data(app: Flask, settings: Settings) -> None:
    """The default group and, if there is no superuser yet, the first one."""
    with app.app_context():
        ensure_default_group()
        if db.session.scalar(select(User.id).where(User.is_superuser.is_(True)).limit(1)):
            logger.info("A superuser already exists: not creating the default admin")
            return
        email = settings.FRACTAL_DEFAULT_ADMIN_EMAIL
        if find_user_by_email(email) is not None:
            logger.warning(
                "User %s exists but is not a superuser: not creating the default admin",
                email,
            )
            return
        create_user(
            email,
            settings.FRACTAL_DEFAULT_ADMIN_PASSWORD,
            username=settings.FRACTAL_DEFAULT_ADMIN_USERNAME,
            is_superuser=True,
            is_verified=True,
        )
        logger.info("Created the first superuser %s", email)
