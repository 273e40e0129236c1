"""Shared fixtures: a PostgreSQL database per test session, apps, users, real servers.

In-process: `app` and `client` on the session's database, `make_user`,
`superuser`/`admin`, and the users `alice`, `bob` and `carol`.
Real servers (see `servers.py`): `real_servers` makes deployments on
throw-away databases, `deployment` and `server` are a module's own,
`server_user` is a regular user of that server, `fractal` its command-line
client. Backends: `replace_backend`, `backend_contract`. Also `sqlite_app`
(the embedded SQLite database) and `declared_operations` (every route).
"""
import dataclasses
import itertools
import os
import re
import subprocess
from contextlib import ExitStack

import bcrypt
import pytest
import requests
from appdb import new_user, reset_database
from backend_contract import check_backend_contract
from servers import DEFAULT_ADMIN, Deployment, FractalClient, make_environ, throwaway_database

from fractal_server.app import create_app
from fractal_server.auth.accounts import ensure_default_group
from fractal_server.db.setup import upgrade_schema
from fractal_server.task_collection.hosts import TaskHost, TaskHostError

_real_gensalt = bcrypt.gensalt
_databases = itertools.count()


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """Cheap bcrypt hashes (cost 4 instead of 12) in the test process: tests make many users."""
    monkeypatch.setattr(bcrypt, "gensalt", lambda rounds=4, prefix=b"2b": _real_gensalt(4, prefix))


# --- the in-process app -------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_db():
    """A fresh, empty PostgreSQL database for this test session."""
    with throwaway_database(f"fractal_test_{os.getpid()}") as name:
        yield name


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
    reset_database(app)
    return app.test_client()


# --- users of the in-process app ------------------------------------------------


@pytest.fixture
def make_user(app, client):
    """`make_user(email, password, **flags)`: create a user; answer `(user_id, bearer headers)`."""
    return lambda *args, **flags: new_user(app, *args, **flags)


@pytest.fixture
def superuser(make_user):
    """A verified superuser (`admin@example.org`, user id 1): `(user_id, headers)`."""
    return make_user("admin@example.org", is_superuser=True, is_verified=True)


@pytest.fixture
def admin(superuser):
    """The bearer headers of `superuser`."""
    return superuser[1]


@pytest.fixture
def verified_users() -> bool:
    """Whether `alice`, `bob` and `carol` are verified: no, unless a module or folder says so."""
    return False


@pytest.fixture
def alice(make_user, verified_users):
    """An active user (`alice@example.org`, password `password`): `(user_id, headers)`."""
    return make_user("alice@example.org", is_verified=verified_users)


@pytest.fixture
def bob(make_user, verified_users):
    """An active user (`bob@example.org`): `(user_id, headers)`."""
    return make_user("bob@example.org", is_verified=verified_users)


@pytest.fixture
def carol(make_user, verified_users):
    """An active user (`carol@example.org`): `(user_id, headers)`."""
    return make_user("carol@example.org", is_verified=verified_users)


# --- real servers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def real_servers(tmp_path_factory):
    """`real_servers(set_db=True, **settings)`: a new `Deployment` of real servers.

    Its database is a throw-away PostgreSQL database, prepared by `fractalctl
    set-db` unless `set_db` is false; its folder is new; `settings` are added
    to its configuration. At the end of the module, its servers are killed
    and its database is dropped.
    """
    with ExitStack() as stack:

        def deploy(set_db: bool = True, **settings: str) -> Deployment:
            name = f"fractal_servers_{os.getpid()}_{next(_databases)}"
            database = stack.enter_context(throwaway_database(name))
            folder = tmp_path_factory.mktemp("deployment")
            deployment = stack.enter_context(Deployment(folder, database, **settings))
            if set_db:
                deployment.set_db()
            return deployment

        yield deploy


@pytest.fixture(scope="module")
def deployment(real_servers) -> Deployment:
    """The module's deployment: the default configuration on a database set up by `fractalctl set-db`."""
    return real_servers()


@pytest.fixture(scope="module")
def server(deployment):
    """`fractalctl start` on the module's deployment, answering."""
    return deployment.start()


@pytest.fixture(scope="module")
def server_user(server) -> tuple[str, str]:
    """A regular user of `server`, created by the default admin over HTTP: active,
    verified, not a superuser. Answers `(email, password)`."""
    credentials = ("user@example.org", "a-user-password")
    email, password = credentials
    admin = server.login(DEFAULT_ADMIN)
    response = requests.post(
        f"{server.url}/auth/register/", json={"email": email, "password": password}, headers=admin, timeout=10
    )
    assert response.status_code == 201, response.text
    response = requests.patch(
        f"{server.url}/auth/users/{response.json()['id']}/", json={"is_verified": True}, headers=admin, timeout=10
    )
    assert response.status_code == 200, response.text
    user = response.json()
    assert (user["is_active"], user["is_verified"], user["is_superuser"]) == (True, True, False)
    return credentials


@pytest.fixture(scope="module")
def fractal_user() -> tuple[str, str]:
    """Who `fractal` logs in as: the default admin, unless a module says otherwise."""
    return DEFAULT_ADMIN


@pytest.fixture
def fractal(server, fractal_user, tmp_path) -> FractalClient:
    """The `fractal` command line of `fractal_user` on `server`, in `tmp_path`."""
    return FractalClient(server.url, fractal_user, tmp_path)


# --- backends -------------------------------------------------------------------


class UnreachableTaskHost(TaskHost):
    """The remote host of a look-alike backend: under the user's `ssh_tasks_dir`, and never reached."""

    remote = True

    def __init__(self, settings, user_settings):
        self.base_dir = user_settings.ssh_tasks_dir

    def _unreachable(self, *args, **kwargs):
        raise TaskHostError("the look-alike remote host cannot be reached")

    run = exists = make_dirs = put_file = read_text = write_text = remove_folder = _unreachable


SLURM_SSH_LOOK_ALIKE = {"name": "slurm_ssh", "task_host": UnreachableTaskHost}
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


@pytest.fixture(scope="session")
def sqlite_app(tmp_path_factory):
    """The application on its embedded SQLite database (development mode, no POSTGRES_*)."""
    data_dir = tmp_path_factory.mktemp("sqlite")
    environ = {"FRACTAL_TASKS_DIR": str(data_dir / "tasks"), "FRACTAL_RUNNER_WORKING_BASE_DIR": str(data_dir / "jobs")}
    application = create_app(dev=True, data_dir=data_dir, environ=environ)
    upgrade_schema(application)
    with application.app_context():
        ensure_default_group()
    return application


@pytest.fixture(scope="session")
def declared_operations(app) -> list:
    """`(method, url, EndpointSpec)` of every route, sorted; in the url every path
    parameter is 1, and so is every required query parameter."""
    found = []
    for rule in app.url_map.iter_rules():
        spec = getattr(app.view_functions[rule.endpoint], "endpoint_spec", None)
        if spec is None:
            continue
        path = re.sub(r"<(?:\w+:)?\w+>", "1", rule.rule)
        required = [name for name, field in spec.query.model_fields.items() if field.is_required()] if spec.query else []
        url = path + ("?" + "&".join(f"{name}=1" for name in required) if required else "")
        found.append((spec.method, url, spec))
    return sorted(found, key=lambda item: (item[1], item[0]))


@pytest.fixture(scope="session")
def slurm_cluster():
    """The local SLURM cluster (tests/slurm, tests/ssh); fail, not skip, when it is down: `./scripts/test` starts it."""
    result = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if "is UP" not in result.stdout:
        pytest.fail("no SLURM controller answers; run `scripts/slurm-cluster start` as root")
