"""Shared fixtures: a PostgreSQL database per test session, apps, users, servers."""
import dataclasses
import os

import psycopg
import pytest
from backend_contract import check_backend_contract
from psycopg import sql

from fractal_server.app import create_app
from fractal_server.auth.accounts import create_user, ensure_default_group
from fractal_server.auth.tokens import issue_token
from fractal_server.db import db
from fractal_server.db.setup import upgrade_schema

POSTGRES = {
    "host": os.environ.get("FRACTAL_TEST_POSTGRES_HOST", "127.0.0.1"),
    "port": os.environ.get("FRACTAL_TEST_POSTGRES_PORT", "5432"),
    "user": os.environ.get("FRACTAL_TEST_POSTGRES_USER", "postgres"),
}


def _admin_connection():
    return psycopg.connect(dbname="postgres", autocommit=True, **POSTGRES)


@pytest.fixture(scope="session")
def postgres_db():
    """A fresh, empty PostgreSQL database for this test session."""
    name = f"fractal_test_{os.getpid()}"
    with _admin_connection() as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    with _admin_connection() as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def make_environ(base_dir, database: str) -> dict[str, str]:
    """A complete production-like configuration on PostgreSQL."""
    return {
        "JWT_SECRET_KEY": "a-test-secret-key-that-is-long-enough-for-hs256",
        "POSTGRES_DB": database,
        "POSTGRES_HOST": POSTGRES["host"],
        "POSTGRES_PORT": POSTGRES["port"],
        "POSTGRES_USER": POSTGRES["user"],
        "FRACTAL_TASKS_DIR": str(base_dir / "tasks"),
        "FRACTAL_RUNNER_WORKING_BASE_DIR": str(base_dir / "jobs"),
    }


@pytest.fixture(scope="session")
def environ(postgres_db, tmp_path_factory) -> dict[str, str]:
    return make_environ(tmp_path_factory.mktemp("fractal"), postgres_db)


@pytest.fixture(scope="session")
def app(environ):
    application = create_app(environ=environ)
    upgrade_schema(application)
    return application


@pytest.fixture
def client(app):
    """A test client on an empty database (ids start at 1) with the group `All`."""
    with app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
            if "id" in table.columns:
                db.session.execute(
                    db.text("SELECT setval(pg_get_serial_sequence(:name, 'id'), 1, false)"),
                    {"name": table.name},
                )
        db.session.commit()
        ensure_default_group()
    return app.test_client()


@pytest.fixture
def make_user(app, client):
    """Create a user and return `(user_id, headers with a bearer token)`."""

    def make(email="user@example.org", password="password", **flags):
        with app.app_context():
            user = create_user(email, password, **flags)
            return user.id, {"Authorization": f"Bearer {issue_token(user, 3600)}"}

    return make


@pytest.fixture
def superuser(make_user):
    return make_user("admin@example.org", is_superuser=True, is_verified=True)


def _unreachable_task_host(settings, user_settings):
    raise AssertionError("the tests of a look-alike remote backend never reach its host")


SLURM_SSH_LOOK_ALIKE = {"name": "slurm_ssh", "task_host": _unreachable_task_host}
"""Backend changes that make the app's backend look like `slurm_ssh` (task environments on another host)."""


@pytest.fixture
def replace_backend(app, monkeypatch):
    """Replace the app's runner backend by a copy with changes, for one test."""

    def replace(**changes):
        state = app.extensions["fractal"]
        monkeypatch.setattr(state, "backend", dataclasses.replace(state.backend, **changes))

    return replace


@pytest.fixture
def backend_contract():
    """`check_backend_contract(make_runner, working_dir, python)`: what every runner backend must do."""
    return check_backend_contract
