"""`POST /api/v2/task/collect/custom/` (`api-v2.md` 10, `task-collection.md` 7)."""
import sys
from pathlib import Path

import pytest

import fractal_server
from conftest import SLURM_SSH_LOOK_ALIKE

from fractal_server.db import db
from fractal_server.db.models import TaskGroupActivityV2, TaskGroupV2, UserGroup

from .helpers import MOCK_PACKAGE, detail, mock_manifest

URL = "/api/v2/task/collect/custom/"
PACKAGE_ROOT = str(MOCK_PACKAGE / "fractal_tasks_mock")


def body(**changes) -> dict:
    return {
        "manifest": mock_manifest(),
        "python_interpreter": sys.executable,
        "label": "mock-custom",
        "package_root": PACKAGE_ROOT,
        **changes,
    }


def without(data: dict, key: str) -> dict:
    return {k: v for k, v in data.items() if k != key}


def test_collect_with_package_root(app, client, alice):
    alice_id, headers = alice
    response = client.post(URL, json=body(version="0.0.1"), headers=headers)
    assert response.status_code == 201, response.json
    tasks = response.json
    manifest = mock_manifest()
    assert [task["name"] for task in tasks] == [entry["name"] for entry in manifest["task_list"]]
    first = tasks[0]
    assert first["command_non_parallel"] == f"{sys.executable} {PACKAGE_ROOT}/{manifest['task_list'][0]['executable_non_parallel']}"
    assert (first["version"], first["authors"], first["type"]) == ("0.0.1", "Fractal test suite", "non_parallel")
    with app.app_context():
        task_group = db.session.get(TaskGroupV2, first["taskgroupv2_id"])
        assert (task_group.origin, task_group.pkg_name, task_group.version, task_group.user_id) == (
            "other", "mock-custom", None, alice_id
        )
        assert (task_group.path, task_group.venv_path, task_group.python_version, task_group.active) == (
            None, None, None, True
        )
        assert task_group.user_group_id == db.session.query(UserGroup).filter_by(name="All").one().id
        assert [task.id for task in task_group.task_list] == [task["id"] for task in tasks]
        assert db.session.query(TaskGroupActivityV2).count() == 0  # no activity for custom collections

    # The same label again: refused (version null matches null).
    assert detail(client.post(URL, json=body(), headers=headers)) == (
        "User 'alice@example.org' already owns a task group with name='mock-custom' and version=None."
    )
    # A private group of another label is fine.
    response = client.post(f"{URL}?private=true", json=body(label="other"), headers=headers)
    assert response.status_code == 201
    with app.app_context():
        assert db.session.get(TaskGroupV2, response.json[0]["taskgroupv2_id"]).user_group_id is None


def test_collect_with_package_name(client, alice):
    _, headers = alice
    data = without(body(package_name=" fractal - server "), "package_root")
    response = client.post(URL, json=data, headers=headers)
    assert response.status_code == 201, response.json
    root = Path(fractal_server.__file__).parent
    executable = mock_manifest()["task_list"][0]["executable_non_parallel"]
    assert response.json[0]["command_non_parallel"] == f"{sys.executable} {root}/{executable}"


@pytest.mark.parametrize(
    "data, loc, msg",
    [
        (body(package_name="fractal-server"), ["body", "__root__"],
         "One and only one must be set between 'package_root' and 'package_name'"),
        (without(body(), "package_root"), ["body", "__root__"],
         "One and only one must be set between 'package_root' and 'package_name'"),
        (body(python_interpreter="python3"), ["body", "python_interpreter"],
         "Python interpreter path must be absolute: (given python3)."),
        (body(package_root="relative/root"), ["body", "package_root"],
         "'package_root' must be an absolute path: (given relative/root)."),
        (body(label="  "), ["body", "label"], "String attribute 'label' cannot be empty"),
        (body(version=""), ["body", "version"], "String attribute 'version' cannot be empty"),
        (body(extra=1), ["body", "extra"], "extra fields not permitted"),
        (body(manifest={**mock_manifest(), "manifest_version": "1"}), ["body", "manifest", "manifest_version"],
         "Wrong manifest version (given 1)"),
        (body(manifest={"manifest_version": "2", "task_list": [{"name": "t"}]}),
         ["body", "manifest", "task_list", 0, "__root__"],
         "Task 't': `executable_non_parallel` and `executable_parallel` cannot be both None."),
        (body(manifest={"manifest_version": "2", "task_list": [
            {"name": "t", "executable_parallel": "p.py", "meta_non_parallel": {"a": 1}}]}),
         ["body", "manifest", "task_list", 0, "__root__"],
         "Task 't': `meta_non_parallel` must be empty without `executable_non_parallel`."),
        (body(manifest={"manifest_version": "2", "has_args_schemas": True,
                        "task_list": [{"name": "t", "executable_parallel": "p.py"}]}),
         ["body", "manifest", "__root__"],
         "Manifest has has_args_schemas=True, but task 't' has task.args_schema_parallel=None."),
    ],
)
def test_invalid_bodies(client, alice, data, loc, msg):
    """Malformed manifests included: always a 422, never a 500."""
    _, headers = alice
    errors = detail(client.post(URL, json=data, headers=headers))
    assert [(error["loc"], error["msg"]) for error in errors] == [(loc, msg)]


def test_checks_of_the_endpoint(client, alice, tmp_path):
    _, headers = alice
    missing = str(tmp_path / "python")
    assert detail(client.post(URL, json=body(python_interpreter=missing), headers=headers)) == (
        f"task_collect.python_interpreter='{missing}' doesn't exist or is not a file."
    )
    assert detail(client.post(URL, json=body(package_root=missing), headers=headers)) == (
        f"task_collect.package_root='{missing}' doesn't exist or is not a directory."
    )
    message = detail(client.post(URL, json=without(body(package_name="no-such-module"), "package_root"), headers=headers))
    assert message.startswith("Cannot determine 'package_root'.\nOriginal output: \nOriginal error: Traceback")
    assert "AttributeError" in message
    # A task-creation rule broken by the tasks of the manifest.
    weird = tmp_path / "a(b"
    weird.mkdir()
    message = detail(client.post(URL, json=body(package_root=str(weird)), headers=headers))
    assert message.startswith("Task 'create_images' of the manifest is not a valid task:\n__root__: Command must not contain")


def test_user_group_and_access(app, client, alice, make_user):
    _, headers = alice
    assert detail(client.post(f"{URL}?private=true&user_group_id=1", json=body(), headers=headers)) == (
        "Cannot set both user_group_id=1 and private=True"
    )
    assert detail(client.post(f"{URL}?user_group_id=999", json=body(), headers=headers), 404) == "UserGroup 999 not found"
    with app.app_context():
        db.session.add(UserGroup(name="others"))
        db.session.commit()
    assert detail(client.post(f"{URL}?user_group_id=2", json=body(), headers=headers), 403) == (
        "User 1 does not belong to UserGroup 2"
    )
    _, unverified = make_user("unverified@example.org")
    assert detail(client.post(URL, json=body(), headers=unverified), 403) == "Forbidden"
    assert detail(client.post(URL, json=body()), 401) == "Unauthorized"


def test_slurm_ssh_needs_a_package_root(client, alice, replace_backend):
    _, headers = alice
    replace_backend(**SLURM_SSH_LOOK_ALIKE)
    data = without(body(package_name="fractal-server"), "package_root")
    assert detail(client.post(URL, json=data, headers=headers)) == "Cannot infer 'package_root' with 'slurm_ssh' backend."
    # The paths are on the remote host: not checked here.
    response = client.post(URL, json=body(package_root="/remote/pkg", python_interpreter="/remote/python"), headers=headers)
    assert response.status_code == 201
    assert response.json[0]["command_non_parallel"].startswith("/remote/python /remote/pkg/")
