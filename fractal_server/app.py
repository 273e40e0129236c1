"""The application factory."""
import logging
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Optional

from flask_jwt_extended import JWTManager
from flask_migrate import Migrate

from fractal_server.api import admin, misc, v2
from fractal_server.api.auth import current_user, groups, users
from fractal_server.auth.current_user import COOKIE_NAME, TOKEN_AUDIENCE
from fractal_server.config import embedded_defaults
from fractal_server.config.errors import FractalConfigurationError
from fractal_server.config.settings import Settings, read_environment, settings_from
from fractal_server.db import db
from fractal_server.db import models  # noqa: F401  (registers the tables)
from fractal_server.db.connection import database_url
from fractal_server.http.errors import register_error_handlers
from fractal_server.http.flask_app import FractalFlask
from fractal_server.logging_setup import configure_logging
from fractal_server.plugins.manager import load_plugins, plugin_packages, select_backend
from fractal_server.server_state import ServerState

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

logger = logging.getLogger("fractal_server")


def create_app(
    *,
    dev: bool = False,
    data_dir: Optional[Path] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> FractalFlask:
    """Build the application from the environment (or from `environ`).

    With `dev=True`, whatever is not configured is filled with embedded
    defaults (see `fractal_server.config.embedded_defaults`). Raises
    `FractalConfigurationError` when a setting is wrong or missing.
    """
    configure_logging(logging.INFO)
    settings = settings_from(read_environment() if environ is None else environ)
    sqlite_file = None
    if dev:
        data_dir = data_dir or Path.cwd() / embedded_defaults.DEFAULT_DATA_DIR_NAME
        settings, filled = embedded_defaults.fill_embedded_defaults(settings, data_dir)
        if not settings.POSTGRES_DB:
            sqlite_file = embedded_defaults.sqlite_path(data_dir)
        embedded_defaults.log_banner(data_dir, filled, uses_sqlite=sqlite_file is not None)
    settings.check(require_database=not dev)
    plugins = load_plugins()
    configure_logging(settings.FRACTAL_LOGGING_LEVEL, plugin_packages(plugins))
    backend = select_backend(plugins, settings.FRACTAL_RUNNER_BACKEND)
    backend.check_settings(settings)

    app = FractalFlask("fractal_server", static_folder=None)
    app.config.update(_flask_config(settings, sqlite_file))
    db.init_app(app)
    Migrate(app, db, directory=str(MIGRATIONS_DIR))
    JWTManager(app)
    app.extensions["fractal"] = ServerState(
        settings=settings,
        plugins=plugins,
        backend=backend,
        dev_mode=dev,
        uses_embedded_database=sqlite_file is not None,
    )
    register_error_handlers(app)
    core_blueprints = [misc.blueprint, current_user.blueprint, users.blueprint, groups.blueprint]
    for blueprint in core_blueprints + v2.BLUEPRINTS + admin.BLUEPRINTS:
        app.register_blueprint(blueprint)
    for providers in plugins.hook.fractal_auth_providers(settings=settings):
        for provider in providers:
            app.register_blueprint(provider.create_blueprint())
    collector_names: set[str] = set()
    for collectors in plugins.hook.fractal_task_collectors():
        for collector in collectors:
            if collector.name in collector_names:
                raise FractalConfigurationError(f"Two installed plugins provide the task collector '{collector.name}'")
            collector_names.add(collector.name)
            app.register_blueprint(
                collector.create_blueprint(), url_prefix=f"/api/v2/task/collect/{collector.name}"
            )
    logger.debug("Settings: %s", settings.get_sanitized())
    logger.info("Runner backend: %s", backend.name)
    return app


def _flask_config(settings: Settings, sqlite_file: Optional[Path]) -> dict:
    return {
        "SQLALCHEMY_DATABASE_URI": database_url(settings, sqlite_file),
        "SQLALCHEMY_ECHO": settings.DB_ECHO,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "JWT_SECRET_KEY": settings.JWT_SECRET_KEY,
        "JWT_ALGORITHM": "HS256",
        "JWT_ENCODE_AUDIENCE": [TOKEN_AUDIENCE],
        "JWT_DECODE_AUDIENCE": TOKEN_AUDIENCE,
        "JWT_ENCODE_NBF": False,
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(seconds=settings.JWT_EXPIRE_SECONDS),
        "JWT_TOKEN_LOCATION": ["headers", "cookies"],
        "JWT_ACCESS_COOKIE_NAME": COOKIE_NAME,
        "JWT_COOKIE_CSRF_PROTECT": False,
        "MAX_CONTENT_LENGTH": settings.FRACTAL_MAX_REQUEST_BODY_BYTES,
    }
