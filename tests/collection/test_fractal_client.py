"""The `fractal` command-line client (fractal-client 2.5) collects tasks from a real server.

`fractalctl start` serves a throw-away PostgreSQL database prepared by
`fractalctl set-db`; the client logs in as the default admin. The last test
kills that server in the middle of a collection and starts it again.
"""
import ensurepip
import json
import os
import subprocess
import sys
import time

import psycopg
import pytest
import requests
from conftest import POSTGRES, make_environ
from psycopg import sql
from servers import BIN, ServerProcess, free_port

from .helpers import MOCK_MANIFEST, MOCK_PACKAGE, build_wheel, mock_manifest, one_task_manifest, task_package_files


def postgres_admin(statement: sql.Composable) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **POSTGRES) as connection:
        connection.execute(statement)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    name = f"fractal_collect_client_{os.getpid()}"
    database = sql.Identifier(name)
    base = tmp_path_factory.mktemp("collect-client-server")
    env = {"PATH": os.environ["PATH"], "HOME": str(base), **make_environ(base, name)}
    env["FRACTAL_MAX_PIP_VERSION"] = ensurepip.version()  # faster: the venv's own pip is kept
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
        process.tasks_dir = base / "tasks"
        process.start_again = lambda: _start(env, base)
        yield process
    finally:
        if process is not None:
            process.kill()
        postgres_admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))


def _start(env: dict, base) -> ServerProcess:
    port = free_port()
    process = ServerProcess(
        [str(BIN / "fractalctl"), "start", "--port", str(port)], env, port, base, base / f"server-{port}.log"
    )
    process.wait_alive()
    return process


@pytest.fixture
def fractal(server, tmp_path):
    """Run `fractal ARGS...` as the default admin; answer (exit code, stdout + stderr)."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "FRACTAL_SERVER": server.url,
        "FRACTAL_USER": "admin@fractal.xy",
        "FRACTAL_PASSWORD": "1234",
        "FRACTAL_CACHE_PATH": str(tmp_path / "cache"),
    }

    def run(*args: str) -> tuple[int, str]:
        done = subprocess.run(
            [str(BIN / "fractal"), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        return done.returncode, done.stdout + done.stderr

    return run


def test_collect_a_wheel_and_check_the_collection(fractal, server, mock_wheel):
    code, out = fractal("--batch", "task", "collect", str(mock_wheel), "--pinned-dependency", f"pip={ensurepip.version()}")
    assert code == 0, out
    activity_id = int(out.strip())
    deadline = time.monotonic() + 300
    while True:
        code, out = fractal("task", "check-collection", str(activity_id))
        assert code == 0, out
        activity = json.loads(out)
        assert activity["log"] is None  # hidden without --include-logs
        if activity["status"] in ("OK", "failed") or time.monotonic() > deadline:
            break
        time.sleep(1)
    code, out = fractal("task", "check-collection", str(activity_id), "--include-logs")
    activity = json.loads(out)
    assert activity["status"] == "OK", activity["log"] + server.log()
    assert (activity["pkg_name"], activity["version"], activity["action"]) == ("fractal-tasks-mock", "0.0.1", "collect")
    assert "END: success." in activity["log"]
    assert (server.tasks_dir / "1" / "fractal-tasks-mock" / "0.0.1" / "venv" / "bin" / "python").is_file()
    code, out = fractal("task", "list")
    assert code == 0, out
    names = [task["name"] for task in json.loads(out)]
    assert sorted(names) == sorted(entry["name"] for entry in mock_manifest()["task_list"])
    # Once more: refused, the client says why.
    code, out = fractal("task", "collect", str(mock_wheel))
    assert code != 0
    assert "already owns a task group with name='fractal-tasks-mock'" in out


def test_collect_custom(fractal):
    root = MOCK_PACKAGE / "fractal_tasks_mock"
    args = ["task", "collect-custom", "mock-custom", sys.executable, str(MOCK_MANIFEST), "--package-root", str(root)]
    code, out = fractal("--batch", *args, "--version", "0.0.1")
    assert code == 0, out
    task_ids = [int(word) for word in out.split()]
    assert len(task_ids) == len(mock_manifest()["task_list"])
    code, out = fractal("task", "list")
    (task,) = [task for task in json.loads(out) if task["id"] == task_ids[0]]
    assert task["command_non_parallel"].startswith(f"{sys.executable} {root}/")
    assert task["version"] == "0.0.1"
    code, out = fractal(*args)
    assert code != 0
    assert "already owns a task group with name='mock-custom' and version=None" in out
    code, out = fractal("task", "collect-custom", "by-name", sys.executable, str(MOCK_MANIFEST), "--package-name", "fractal-server")
    assert code == 0, out


def admin_session(server) -> requests.Session:
    session = requests.Session()
    login = session.post(
        f"{server.url}/auth/token/login/", data={"username": "admin@fractal.xy", "password": "1234"}, timeout=10
    )
    session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    return session


def test_a_collection_cut_by_a_crash_is_failed_at_the_next_start(server, tmp_path):
    """Last of the module: the server is killed while it collects, then started again."""
    wheel = build_wheel(tmp_path, "crash_demo", "1.0.0", task_package_files("crash_demo", one_task_manifest()))
    session = admin_session(server)
    activity = session.post(f"{server.url}/api/v2/task/collect/pip/", json={"package": str(wheel)}, timeout=30).json()
    url = f"{server.url}/api/v2/task-group/activity/{activity['id']}/"
    deadline = time.monotonic() + 120
    while session.get(url, timeout=10).json()["status"] != "ongoing":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    path = server.tasks_dir / "1" / "crash-demo" / "1.0.0"
    assert path.exists()
    server.kill()  # the whole process group: the server and the pip it runs

    again = server.start_again()
    try:
        session = admin_session(again)
        url = f"{again.url}/api/v2/task-group/activity/{activity['id']}/"
        after = session.get(url, timeout=10).json()
        assert after["status"] == "failed"  # at start-up, before the first request
        assert "is no longer running (the activity was 'ongoing'); it was probably killed or crashed." in after["log"]
        assert after["taskgroupv2_id"] is None and after["timestamp_ended"] is not None
        assert not path.exists()
        assert session.get(f"{again.url}/api/v2/task-group/{activity['taskgroupv2_id']}/", timeout=10).status_code == 404
    finally:
        again.kill()
