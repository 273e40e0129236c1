"""End to end: `fractalctl`, gunicorn and `flask run` serving real processes."""
import json
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
import requests
from servers import BIN, FRACTALCTL, GUNICORN, POSTGRES, Deployment, free_port, postgres, run, wait_until

ALIVE = {"alive": True, "version": "2.9.2"}
SHUTDOWN = "Fractal server process shutting down"
GUNICORN_1 = [*GUNICORN, "--workers=1"]


@pytest.fixture(scope="module")
def module_database(real_servers):
    """A PostgreSQL database for this module only: others share `postgres_db`.

    One for the whole module, since every DROP DATABASE waits for a checkpoint.
    """
    return real_servers(set_db=False).database


@pytest.fixture
def database(module_database):
    """The module's database, emptied: a new public schema."""
    with postgres(module_database) as connection:
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
def serving(tmp_path, workdir):
    """Servers and `fractalctl` run in `workdir` with no configuration in their environment
    (only a private HOME): they read `workdir/.fractal_server.env`, or use the embedded default.
    Servers are killed at teardown."""
    with Deployment(tmp_path, cwd=workdir) as deployment:
        yield deployment


@pytest.fixture
def start(serving):
    """Start a server on a free port (`{port}` in argv), without waiting for it."""
    return lambda *argv: serving.start(list(argv), wait=False)


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


def one_line_error(output: str, prefix: str) -> str:
    """The single line of `output` starting with `prefix`, checking there is no traceback."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, output
    return lines[0].removeprefix(prefix)


def test_set_db_then_start_serves_and_stops_on_sigterm(database, workdir, serving, start):
    write_env_file(workdir, database, FRACTAL_MAX_REQUEST_BODY_BYTES="2000")
    serving.set_db()
    assert "A superuser already exists" in serving.set_db()
    with postgres(database) as connection:
        superusers = connection.execute("SELECT email FROM user_oauth WHERE is_superuser")
        assert superusers.fetchall() == [("admin@fractal.xy",)]
        assert connection.execute("SELECT name FROM usergroup").fetchall() == [("All",)]

    server = start(FRACTALCTL, "start", "--port", "{port}")
    assert server.wait_alive() == ALIVE
    # The body limit of the configuration, answered in the contract's format.
    headers = {**server.login(), "Content-Type": "application/json"}
    response = requests.post(f"{server.url}/api/v2/project/", data='{"name": "p"}' + " " * 2000, headers=headers, timeout=10)
    assert (response.status_code, response.json()) == (413, {"detail": "Request body too large: the limit is 2000 bytes."})
    response = requests.post(f"{server.url}/api/v2/project/", data='{"name": "p"}' + " " * 1900, headers=headers, timeout=10)
    assert response.status_code == 201
    assert server.stop(signal.SIGTERM) == 0
    assert str(workdir / "jobs") in server.log()  # the relative folder, made absolute
    assert "Received SIGTERM: stopping" in server.log()
    assert SHUTDOWN in server.log()


def test_start_on_an_empty_database_asks_for_set_db(database, workdir, serving):
    write_env_file(workdir, database)
    result = serving.fractalctl("start", "--port", str(free_port()))
    assert result.returncode == 1
    message = one_line_error(result.stderr, "fractalctl: ")
    assert "run `fractalctl set-db`" in message
    with postgres(database) as connection:
        tables = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchall() == []


def test_gunicorn_worker_shuts_down_gracefully_on_sigabrt(database, workdir, serving, start):
    write_env_file(workdir, database)
    serving.set_db()
    server = start(*GUNICORN_1)
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
    server = start(*GUNICORN_1, logger_class)
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


def test_openapi_writes_the_document(postgres_db, workdir, serving):
    write_env_file(workdir, postgres_db)
    result = serving.fractalctl("openapi", "-f", "out.json")
    assert result.returncode == 0, result.stderr
    document = json.loads((workdir / "out.json").read_text())
    assert "openapi" in document
    assert "/api/alive/" in document["paths"]


def test_demo_runs_a_workflow_on_the_embedded_default(tmp_path, workdir, start):
    """The README's demo: log in, collect the example tasks, run a workflow (SQLite)."""
    data_dir = tmp_path / "data"
    server = start(FRACTALCTL, "start", "--dev", "--port", "{port}", "--data-dir", str(data_dir))
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
