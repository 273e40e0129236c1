"""The real `fractal` command-line client (fractal-client 2.5) against a real server.

The server is `fractalctl start` on a throw-away PostgreSQL database set up
with `fractalctl set-db`, so the client talks to the default admin
(`admin@fractal.xy` / `1234`) over HTTP, exactly as in production.
"""
import json
import os
import subprocess

import psycopg
import pytest
import requests
from conftest import POSTGRES, make_environ
from psycopg import sql
from servers import BIN, ServerProcess, free_port

ADMIN_EMAIL = "admin@fractal.xy"
ADMIN_PASSWORD = "1234"
FRACTAL = BIN / "fractal"


def postgres_admin(statement: sql.Composable) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **POSTGRES) as connection:
        connection.execute(statement)


def base_env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"]}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`fractalctl start` on a fresh database prepared by `fractalctl set-db`."""
    name = f"fractal_client_{os.getpid()}"
    database = sql.Identifier(name)
    base = tmp_path_factory.mktemp("fractal-client-server")
    env = {**base_env(), "HOME": str(base), **make_environ(base, name)}
    fractalctl = str(BIN / "fractalctl")
    postgres_admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
    postgres_admin(sql.SQL("CREATE DATABASE {}").format(database))
    process = None
    try:
        set_db = subprocess.run([fractalctl, "set-db"], env=env, cwd=base, capture_output=True, text=True, timeout=120)
        assert set_db.returncode == 0, set_db.stdout + set_db.stderr
        port = free_port()
        process = ServerProcess([fractalctl, "start", "--port", str(port)], env, port, base, base / "server.log")
        process.wait_alive()
        yield process
    finally:
        if process is not None:
            process.kill()
        postgres_admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))


@pytest.fixture
def fractal(server, tmp_path):
    """Run `fractal ARGS...` as the default admin; answer (exit code, stdout, stderr)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **base_env(),
        "HOME": str(home),
        "FRACTAL_SERVER": server.url,
        "FRACTAL_USER": ADMIN_EMAIL,
        "FRACTAL_PASSWORD": ADMIN_PASSWORD,
        "FRACTAL_CACHE_PATH": str(tmp_path / "cache"),
    }

    def run(*args: str):
        done = subprocess.run(
            [str(FRACTAL), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        return done.returncode, done.stdout, done.stderr

    return run


def fractal_json(fractal, *args: str):
    code, out, err = fractal(*args)
    assert code == 0, out + err
    return json.loads(out)


def admin_get(server, path: str):
    """GET as the default admin, straight over HTTP."""
    login = requests.post(
        f"{server.url}/auth/token/login/", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, timeout=10
    )
    token = login.json()["access_token"]
    return requests.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_whoami_batch_prints_the_user_id(fractal, tmp_path):
    code, out, err = fractal("--batch", "user", "whoami")
    assert (code, out.strip()) == (0, "1"), err
    assert (tmp_path / "cache" / "session").is_file()


def test_whoami_prints_user_and_settings(fractal):
    me = fractal_json(fractal, "user", "whoami")
    assert me["email"] == ADMIN_EMAIL
    assert (me["is_superuser"], me["is_verified"], me["is_active"]) == (True, True, True)
    assert me["settings"] == {"slurm_user": None, "slurm_accounts": [], "ssh_username": None, "project_dir": None}


def test_whoami_with_wrong_password_fails(fractal):
    code, out, err = fractal("--password", "wrong", "user", "whoami")
    assert code == 1
    assert "LOGIN_BAD_CREDENTIALS" in out


def test_register_creates_a_verified_user(fractal, server):
    new = fractal_json(fractal, "user", "register", "client-user@example.org", "secret-password")
    assert new["email"] == "client-user@example.org"
    assert (new["is_active"], new["is_superuser"], new["is_verified"]) == (True, False, True)
    assert new["settings"]["slurm_accounts"] == []
    stored = admin_get(server, f"/auth/users/{new['id']}/").json()
    assert stored["is_verified"] is True
    assert stored["group_ids_names"] == [[1, "All"]]
    listed = fractal_json(fractal, "user", "list")
    assert "client-user@example.org" in [user["email"] for user in listed]


def test_user_list(fractal):
    users = fractal_json(fractal, "user", "list")
    assert users[0]["id"] == 1 and users[0]["email"] == ADMIN_EMAIL
    assert all(user["group_ids_names"] is None for user in users)


def test_group_list(fractal):
    groups = fractal_json(fractal, "group", "list", "--user-ids")
    assert groups[0]["name"] == "All" and groups[0]["id"] == 1
    assert 1 in groups[0]["user_ids"]
    code, out, _ = fractal("--batch", "group", "list")
    assert code == 0 and out.split()[0] == "1"
