"""`POST /api/v2/task/collect/pip/`: the checks of the endpoint, in the contract's order (`api-v2.md` 10).

No collection runs here (`no_background`): only what the endpoint answers and stores.
"""
import dataclasses
import json
import sys
import threading

import pytest

from conftest import SLURM_SSH_LOOK_ALIKE

from fractal_server.db import db
from fractal_server.db.models import TaskGroupActivityV2, TaskGroupV2, User, UserGroup
from fractal_server.task_collection import pip_collector, pypi
from fractal_server.task_collection.pypi import resolve_version

from .helpers import FakeIndex, detail, index_document

URL = "/api/v2/task/collect/pip/"
OWN_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def post(client, alice, no_background, empty_tasks_dir):
    _, headers = alice

    def post_body(query: str = "", **body):
        # Serialised here: the test client would sort the keys (and so reorder the pins).
        data = json.dumps(body)
        return client.post(f"{URL}{query}", data=data, content_type="application/json", headers=headers)

    return post_body


def group_row(app, **columns) -> int:
    with app.app_context():
        task_group = TaskGroupV2(**{"user_id": 1, "origin": "other", "active": True, **columns})
        db.session.add(task_group)
        db.session.commit()
        return task_group.id


def test_a_wheel_is_accepted_and_stored(app, post, mock_wheel, empty_tasks_dir, no_background):
    pins = {"setuptools": "69.5.1", " pip ": "24.0"}
    response = post(package=str(mock_wheel), package_extras="a,b", pinned_package_versions=pins)
    assert response.status_code == 202, response.json
    activity = response.json
    assert (activity["status"], activity["action"], activity["pkg_name"], activity["version"]) == (
        "pending", "collect", "fractal-tasks-mock", "0.0.1"
    )
    assert no_background == [activity["id"]]
    path = empty_tasks_dir / "1" / "fractal-tasks-mock" / "0.0.1"
    with app.app_context():
        task_group = db.session.get(TaskGroupV2, activity["taskgroupv2_id"])
        assert (task_group.origin, task_group.path, task_group.venv_path, task_group.wheel_path) == (
            "wheel-file", str(path), str(path / "venv"), str(mock_wheel)
        )
        assert (task_group.python_version, task_group.pip_extras) == (OWN_VERSION, "a,b")
        # Stored in the order given (pins are checked and installed in that order).
        assert list(task_group.pinned_package_versions.items()) == [("setuptools", "69.5.1"), ("pip", "24.0")]
        assert (task_group.active, task_group.user_group_id, task_group.task_list) == (True, 1, [])
        stored = db.session.get(TaskGroupActivityV2, activity["id"])
        assert stored.process_id.split(":")[1] == str(__import__("os").getpid())
    assert not path.exists()  # created by the background work


def test_verified_users_only(client, make_user, no_background):
    _, headers = make_user("unverified@example.org")
    assert detail(client.post(URL, json={"package": "x"}, headers=headers), 403) == "Forbidden"
    assert detail(client.post(URL, json={}), 401) == "Unauthorized"


# --- Checks of the endpoint, in order ---


def test_user_group_resolution(app, post, mock_wheel):
    wheel = str(mock_wheel)
    assert detail(post("?private=true&user_group_id=1", package=wheel)) == "Cannot set both user_group_id=1 and private=True"
    assert detail(post("?user_group_id=999", package=wheel), 404) == "UserGroup 999 not found"
    with app.app_context():
        db.session.add(UserGroup(name="others"))
        db.session.commit()
    assert detail(post("?user_group_id=2", package=wheel), 403) == "User 1 does not belong to UserGroup 2"
    response = post("?private=true", package=wheel)
    assert response.status_code == 202
    with app.app_context():
        assert db.session.get(TaskGroupV2, response.json["taskgroupv2_id"]).user_group_id is None


def test_user_settings_of_the_backend(app, post, mock_wheel, monkeypatch):
    state = app.extensions["fractal"]
    slurm = dataclasses.replace(state.backend, name="slurm", required_user_settings=("slurm_user", "project_dir"))
    monkeypatch.setattr(state, "backend", slurm)
    assert detail(post(package=str(mock_wheel))) == (
        "User settings are not valid for FRACTAL_RUNNER_BACKEND='slurm'. Original error: missing slurm_user, project_dir"
    )
    ssh = dataclasses.replace(state.backend, **SLURM_SSH_LOOK_ALIKE, required_user_settings=("ssh_tasks_dir",))
    monkeypatch.setattr(state, "backend", ssh)
    assert detail(post(package=str(mock_wheel))) == (
        "User settings are not valid for FRACTAL_RUNNER_BACKEND='slurm_ssh'. Original error: missing ssh_tasks_dir"
    )


def test_with_a_remote_host_the_path_is_under_ssh_tasks_dir_and_not_checked(app, post, mock_wheel, monkeypatch):
    state = app.extensions["fractal"]
    ssh = dataclasses.replace(state.backend, **SLURM_SSH_LOOK_ALIKE, required_user_settings=("ssh_tasks_dir",))
    monkeypatch.setattr(state, "backend", ssh)
    with app.app_context():
        db.session.get(User, 1).settings.ssh_tasks_dir = "/remote/tasks"
        db.session.commit()
    response = post(package=str(mock_wheel))
    assert response.status_code == 202, response.json
    with app.app_context():
        task_group = db.session.get(TaskGroupV2, response.json["taskgroupv2_id"])
        assert (task_group.path, task_group.wheel_path) == ("/remote/tasks/1/fractal-tasks-mock/0.0.1", str(mock_wheel))
    # The wheel is a file of the server's machine, uploaded by the background work.
    assert detail(post(package="/remote/fractal_tasks_mock-0.0.2-py3-none-any.whl")) == (
        "No such file: /remote/fractal_tasks_mock-0.0.2-py3-none-any.whl."
    )


def test_uniqueness_then_path_then_files(app, post, mock_wheel, empty_tasks_dir):
    wheel = str(mock_wheel)
    path = empty_tasks_dir / "1" / "fractal-tasks-mock" / "0.0.1"
    # Another task group with the same path (and another name): refused.
    other = group_row(app, pkg_name="other", version="1", path=str(path))
    assert detail(post(package=wheel)) == (
        f"Another task-group already has path={path}.\nIt is task group {other} (other 1, owner user 1)."
    )
    # The same package version: the uniqueness message comes first.
    group_row(app, pkg_name="fractal-tasks-mock", version="0.0.1")
    assert detail(post(package=wheel)).startswith(
        "User 'alice@example.org' already owns a task group with name='fractal-tasks-mock' and version='0.0.1'."
    )
    with app.app_context():
        db.session.query(TaskGroupV2).delete()
        db.session.commit()
    # Per user group as well.
    with app.app_context():
        db.session.add(User(email="bob@example.org", hashed_password="x"))
        db.session.commit()
    group_row(app, user_id=2, user_group_id=1, pkg_name="fractal-tasks-mock", version="0.0.1")
    assert detail(post(package=wheel)) == (
        "UserGroup All already owns a task group with pkg_name='fractal-tasks-mock' and version='0.0.1'."
    )
    assert post("?private=true", package=wheel).status_code == 202
    with app.app_context():
        db.session.query(TaskGroupActivityV2).delete()
        db.session.query(TaskGroupV2).delete()
        db.session.commit()
    # A folder already on disk.
    path.mkdir(parents=True)
    assert detail(post(package=wheel)) == f"{path} already exists."
    path.rmdir()
    missing = str(mock_wheel.parent / "fractal_tasks_mock-9.9.9-py3-none-any.whl")
    assert detail(post(package=missing)) == f"No such file: {missing}."


def test_two_simultaneous_requests_only_one_proceeds(app, client, alice, no_background, mock_wheel, monkeypatch):
    """Both pass the checks at the same moment; the database lets one of them store its task group."""
    _, headers = alice
    barrier = threading.Barrier(2, timeout=10)
    real_check = pip_collector.check_path_is_free
    calls = []

    def check_then_wait(path):
        real_check(path)
        calls.append(path)
        if len(calls) <= 2:
            barrier.wait()

    monkeypatch.setattr(pip_collector, "check_path_is_free", check_then_wait)
    answers = []

    def request():
        answers.append(app.test_client().post(URL, json={"package": str(mock_wheel)}, headers=headers))

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answer.status_code for answer in answers) == [202, 422]
    (refused,) = [answer for answer in answers if answer.status_code == 422]
    (accepted,) = [answer for answer in answers if answer.status_code == 202]
    assert refused.json["detail"] == (
        "User 'alice@example.org' already owns a task group with name='fractal-tasks-mock' and version='0.0.1'."
        f"\nNote:There exists another task-group collection (activity ID={accepted.json['id']}) "
        f"for this task group (ID={accepted.json['taskgroupv2_id']}), with status 'pending'."
    )
    assert no_background == [accepted.json["id"]]
    with app.app_context():
        assert db.session.query(TaskGroupV2).count() == 1
        assert db.session.query(TaskGroupActivityV2).count() == 1


# --- Versions from the package index ---


@pytest.fixture
def index(monkeypatch):
    documents = {
        "Fractal_Tasks.Demo": index_document("2.0.0", ["0.9", "0.10.0", "0.10.1", "1.0.0", "1.0.0a1", "2.0.0"]),
        "broken": {"info": {}},
        "not-json": b"<html>",
        "bad-version": index_document("../../x", ["../../x"]),
    }
    with FakeIndex(documents) as fake:
        monkeypatch.setattr(pypi, "PACKAGE_INDEX_JSON_API", fake.url)
        yield fake


@pytest.mark.parametrize(
    "requested, resolved",
    [(None, "2.0.0"), ("1.0.0", "1.0.0"), ("0.1", "0.10.1"), ("1.0", "1.0.0a1"), ("0.9", "0.9")],
)
def test_index_versions(app, post, index, requested, resolved, empty_tasks_dir):
    body = {"package": "Fractal_Tasks.Demo"}
    if requested:
        body["package_version"] = requested
    response = post(**body)
    assert response.status_code == 202, response.json
    assert (response.json["pkg_name"], response.json["version"]) == ("fractal-tasks-demo", resolved)
    assert index.requested == ["/pypi/Fractal_Tasks.Demo/json"]  # the package as typed
    with app.app_context():
        task_group = db.session.get(TaskGroupV2, response.json["taskgroupv2_id"])
        assert (task_group.origin, task_group.wheel_path) == ("pypi", None)
        assert task_group.path == str(empty_tasks_dir / "1" / "fractal-tasks-demo" / resolved)


def test_index_errors(post, index):
    url = f"{index.url}/unknown/json"
    assert detail(post(package="unknown")) == (
        f"Could not get {url} (status_code 404).\nHint: specify the required version for 'unknown'."
    )
    assert detail(post(package="Fractal_Tasks.Demo", package_version="3")) == (
        "No version starting with 3 found.\nHint: specify the required version for 'Fractal_Tasks.Demo'."
    )
    assert detail(post(package="broken")).startswith(f"Could not read the versions of 'broken' in the answer of {index.url}")
    assert detail(post(package="not-json")).startswith("Could not read the versions of 'not-json'")
    assert detail(post(package="bad-version")) == "The package index answered an invalid version '../../x' for 'bad-version'."


def test_index_unreachable(post, monkeypatch):
    monkeypatch.setattr(pypi, "PACKAGE_INDEX_JSON_API", "http://127.0.0.1:9/pypi")
    message = detail(post(package="pkg"))
    assert message.startswith("Could not get http://127.0.0.1:9/pypi/pkg/json.\nOriginal error: ")


def test_the_real_index():
    """The package index itself (this machine reaches it)."""
    assert resolve_version("fractal-tasks-core", "1.4.3") == "1.4.3"
    assert resolve_version("fractal-tasks-core", "1.4").startswith("1.4.")
    assert int(resolve_version("fractal-tasks-core", None).split(".")[0]) >= 1
