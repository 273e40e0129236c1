"""End to end: `fractalctl`, gunicorn and `flask run` serving real processes."""
import json
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path

import psycopg
import pytest
from conftest import POSTGRES
from psycopg import sql
from servers import BIN, ServerProcess, free_port, run, wait_until

ALIVE = {"alive": True, "version": "2.9.2"}
SHUTDOWN = "Fractal server process shutting down"
GUNICORN = [
    str(BIN / "gunicorn"),
    "fractal_server.main:app",
    "--worker-class=fractal_server.gunicorn_fractal.FractalWorker",
    "--bind=127.0.0.1:{port}",
    "--workers=1",
]


def _postgres(database: str = "postgres"):
    return psycopg.connect(dbname=database, autocommit=True, **POSTGRES)


@pytest.fixture(scope="module")
def module_database(postgres_db):
    """A PostgreSQL database for this module only: others share `postgres_db`.

    One for the whole module, since every DROP DATABASE waits for a checkpoint.
    """
    name = f"{postgres_db}_e2e"
    with _postgres() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    with _postgres() as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def database(module_database):
    """The module's database, emptied: a new public schema."""
    with _postgres(module_database) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")
    return module_database


@pytest.fixture
def workdir(tmp_path):
    """An empty working directory; logs and HOME stay outside of it."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The process environment: no configuration, a private HOME."""
    return {"HOME": str(tmp_path)}


@pytest.fixture
def start(tmp_path, workdir, env):
    """Start a server on a free port (`{port}` in argv); all are killed at teardown."""
    started = []

    def start_server(*argv: str) -> ServerProcess:
        port = free_port()
        server = ServerProcess(
            [arg.format(port=port) for arg in argv],
            env,
            port,
            workdir,
            tmp_path / f"server-{len(started)}.log",
        )
        started.append(server)
        return server

    yield start_server
    for server in started:
        server.kill()


def write_env_file(workdir, database: str, **changes) -> None:
    """The example `.fractal_server.env` of the deployment guide, on PostgreSQL.

    `changes` override variables; a value of None removes the variable.
    """
    variables = {
        "JWT_SECRET_KEY": "a-secret-for-the-end-to-end-tests-only",
        "POSTGRES_DB": database,
        "POSTGRES_HOST": POSTGRES["host"],
        "POSTGRES_PORT": POSTGRES["port"],
        "POSTGRES_USER": POSTGRES["user"],
        "FRACTAL_TASKS_DIR": str(workdir.parent / "tasks"),
        "FRACTAL_RUNNER_WORKING_BASE_DIR": "jobs",
        "FRACTAL_RUNNER_BACKEND": "local",
        **changes,
    }
    (workdir / ".fractal_server.env").write_text(
        "".join(f"{key}={value}\n" for key, value in variables.items() if value is not None)
    )


def fractalctl(*args: str, env: dict, cwd):
    return run([str(BIN / "fractalctl"), *args], env, cwd)


def set_db(env, workdir) -> str:
    result = fractalctl("set-db", env=env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    return result.stderr


def one_line_error(output: str, prefix: str) -> str:
    """The single line of `output` starting with `prefix`, checking there is no traceback."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, output
    return lines[0].removeprefix(prefix)


def test_set_db_then_start_serves_and_stops_on_sigterm(database, workdir, env, start):
    write_env_file(workdir, database)
    set_db(env, workdir)
    assert "A superuser already exists" in set_db(env, workdir)
    with _postgres(database) as connection:
        superusers = connection.execute("SELECT email FROM user_oauth WHERE is_superuser")
        assert superusers.fetchall() == [("admin@fractal.xy",)]
        assert connection.execute("SELECT name FROM usergroup").fetchall() == [("All",)]

    server = start(str(BIN / "fractalctl"), "start", "--port", "{port}")
    assert server.wait_alive() == ALIVE
    assert server.stop(signal.SIGTERM) == 0
    assert str(workdir / "jobs") in server.log()  # the relative folder, made absolute
    assert "Received SIGTERM: stopping" in server.log()
    assert SHUTDOWN in server.log()


def test_start_on_an_empty_database_asks_for_set_db(database, workdir, env):
    write_env_file(workdir, database)
    result = fractalctl("start", "--port", str(free_port()), env=env, cwd=workdir)
    assert result.returncode == 1
    message = one_line_error(result.stderr, "fractalctl: ")
    assert "run `fractalctl set-db`" in message
    with _postgres(database) as connection:
        tables = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchall() == []


def test_gunicorn_worker_shuts_down_gracefully_on_sigabrt(database, workdir, env, start):
    write_env_file(workdir, database)
    set_db(env, workdir)
    server = start(*GUNICORN)
    assert server.wait_alive() == ALIVE
    [worker] = wait_until(server.children, 10, "the gunicorn worker")

    os.kill(worker, signal.SIGABRT)
    server.wait_for_log(f"Worker {worker} received SIGABRT: shutting down gracefully")
    server.wait_for_log(SHUTDOWN)
    [new_worker] = wait_until(
        lambda: [pid for pid in server.children() if pid != worker], 30, "a new worker"
    )
    assert server.wait_alive() == ALIVE
    assert f"Booting worker with pid: {new_worker}" in server.log()
    assert f"Worker exiting (pid: {worker})" in server.log()
    assert f"(pid:{worker}) exited with code" not in server.log()

    assert server.stop(signal.SIGTERM) == 0
    assert server.log().count(SHUTDOWN) == 2


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"JWT_SECRET_KEY": None}, "configuration error: JWT_SECRET_KEY cannot be None"),
        ({"POSTGRES_DB": "no_such_database"}, 'database "no_such_database" does not exist'),
    ],
    ids=["no-secret", "no-database"],
)
def test_gunicorn_stops_when_the_application_cannot_start(
    changes, problem, postgres_db, workdir, start
):
    write_env_file(workdir, postgres_db, **changes)
    logger_class = "--logger-class=fractal_server.gunicorn_fractal.FractalGunicornLogger"
    server = start(*GUNICORN, logger_class)
    assert server.process.wait(30) == 4
    log = server.log()
    assert problem in one_line_error(log, "fractal-server: ")
    assert log.count("Booting worker") == 1
    date = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.search(
        rf"^{date}   - gunicorn.error - ERROR - \[pid {server.process.pid}\] - "
        r"Reason: App failed to load\.$",
        log,
        re.MULTILINE,
    ), log


@pytest.mark.parametrize("command", ["fractalctl", "flask"])
def test_embedded_defaults_start_without_any_configuration(command, tmp_path, workdir, start):
    if command == "fractalctl":
        data_dir = tmp_path / "data"
        argv = ["start", "--dev", "--port", "{port}", "--data-dir", str(data_dir)]
    else:
        data_dir = workdir / "fractal-server-data"
        argv = ["--app", "fractal_server.main", "run", "--port", "{port}"]
    server = start(str(BIN / command), *argv)
    assert server.wait_alive() == ALIVE
    assert "DEVELOPMENT MODE" in server.log()
    assert list(workdir.iterdir()) == ([data_dir] if command == "flask" else [])
    secret = data_dir / "jwt_secret_key"
    assert secret.read_text().strip()
    assert secret.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(data_dir / "fractal_server.sqlite") as connection:
        admins = connection.execute(
            "SELECT is_superuser FROM user_oauth WHERE email = 'admin@fractal.xy'"
        )
        assert admins.fetchall() == [(1,)]


def test_openapi_writes_the_document(postgres_db, workdir, env):
    write_env_file(workdir, postgres_db)
    result = fractalctl("openapi", "-f", "out.json", env=env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    document = json.loads((workdir / "out.json").read_text())
    assert "openapi" in document
    assert "/api/alive/" in document["paths"]


def test_demo_runs_a_workflow_on_the_embedded_default(tmp_path, workdir, start):
    """The README's demo: log in, collect the example tasks, run a workflow (SQLite)."""
    data_dir = tmp_path / "data"
    server = start(str(BIN / "fractalctl"), "start", "--dev", "--port", "{port}", "--data-dir", str(data_dir))
    server.wait_alive()
    demo = Path(__file__).parents[2] / "scripts" / "demo.py"
    result = run(
        [sys.executable, str(demo), "--url", server.url, "--data-dir", str(data_dir)],
        env={},
        cwd=workdir,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr + server.log()
    assert "Job 1 ended: done" in result.stdout
    assert "now has 8 images" in result.stdout
    assert (data_dir / "fractal_server.sqlite").exists()
    assert list((data_dir / "jobs").glob("proj_v2_*_job_0000001_*.zip"))
