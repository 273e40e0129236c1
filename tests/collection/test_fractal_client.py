"""The `fractal` command-line client (fractal-client 2.5) collects tasks from a real server.

`fractalctl start` serves a throw-away PostgreSQL database prepared by
`fractalctl set-db`; the client logs in as the default admin. The last test
kills that server in the middle of a collection and starts it again.
"""
import ensurepip
import json
import sys
import time

import pytest
import requests

from .helpers import MOCK_MANIFEST, MOCK_PACKAGE, build_wheel, mock_manifest, one_task_manifest, task_package_files


@pytest.fixture(scope="module")
def deployment(real_servers):
    """Faster: the pip that comes with each new environment is kept."""
    return real_servers(FRACTAL_MAX_PIP_VERSION=ensurepip.version())


def test_collect_a_wheel_and_check_the_collection(fractal, server, deployment, mock_wheel):
    code, out, err = fractal("--batch", "task", "collect", str(mock_wheel), "--pinned-dependency", f"pip={ensurepip.version()}")
    assert code == 0, out + err
    activity_id = int(out.strip())
    deadline = time.monotonic() + 300
    while True:
        code, out, err = fractal("task", "check-collection", str(activity_id))
        assert code == 0, out + err
        activity = json.loads(out)
        assert activity["log"] is None  # hidden without --include-logs
        if activity["status"] in ("OK", "failed") or time.monotonic() > deadline:
            break
        time.sleep(1)
    code, out, err = fractal("task", "check-collection", str(activity_id), "--include-logs")
    activity = json.loads(out)
    assert activity["status"] == "OK", activity["log"] + server.log()
    assert (activity["pkg_name"], activity["version"], activity["action"]) == ("fractal-tasks-mock", "0.0.1", "collect")
    assert "END: success." in activity["log"]
    assert (deployment.tasks_dir / "1" / "fractal-tasks-mock" / "0.0.1" / "venv" / "bin" / "python").is_file()
    code, out, err = fractal("task", "list")
    assert code == 0, out + err
    names = [task["name"] for task in json.loads(out)]
    assert sorted(names) == sorted(entry["name"] for entry in mock_manifest()["task_list"])
    # Once more: refused, the client says why.
    code, out, err = fractal("task", "collect", str(mock_wheel))
    assert code != 0
    assert "already owns a task group with name='fractal-tasks-mock'" in out + err


def test_collect_custom(fractal):
    root = MOCK_PACKAGE / "fractal_tasks_mock"
    args = ["task", "collect-custom", "mock-custom", sys.executable, str(MOCK_MANIFEST), "--package-root", str(root)]
    code, out, err = fractal("--batch", *args, "--version", "0.0.1")
    assert code == 0, out + err
    task_ids = [int(word) for word in out.split()]
    assert len(task_ids) == len(mock_manifest()["task_list"])
    code, out, err = fractal("task", "list")
    (task,) = [task for task in json.loads(out) if task["id"] == task_ids[0]]
    assert task["command_non_parallel"].startswith(f"{sys.executable} {root}/")
    assert task["version"] == "0.0.1"
    code, out, err = fractal(*args)
    assert code != 0
    assert "already owns a task group with name='mock-custom' and version=None" in out + err
    code, out, err = fractal("task", "collect-custom", "by-name", sys.executable, str(MOCK_MANIFEST), "--package-name", "fractal-server")
    assert code == 0, out + err


def admin_session(server) -> requests.Session:
    session = requests.Session()
    session.headers.update(server.login())
    return session


def test_a_collection_cut_by_a_crash_is_failed_at_the_next_start(server, deployment, tmp_path):
    """Last of the module: the server is killed while it collects, then started again."""
    wheel = build_wheel(tmp_path, "crash_demo", "1.0.0", task_package_files("crash_demo", one_task_manifest()))
    session = admin_session(server)
    activity = session.post(f"{server.url}/api/v2/task/collect/pip/", json={"package": str(wheel)}, timeout=30).json()
    url = f"{server.url}/api/v2/task-group/activity/{activity['id']}/"
    deadline = time.monotonic() + 120
    while session.get(url, timeout=10).json()["status"] != "ongoing":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    path = deployment.tasks_dir / "1" / "crash-demo" / "1.0.0"
    assert path.exists()
    server.kill()  # the whole process group: the server and the pip it runs

    again = deployment.start()
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
