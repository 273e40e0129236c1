"""Collecting the mock task package from its wheel, end to end, then deactivating and reactivating it.

One collection is shared by the tests of this module (they only read it,
except the last one, which deactivates and reactivates it).
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from appdb import new_user

from .helpers import level_of, log_entries, mock_manifest, wait_for_activity

PINS = {"setuptools": "69.5.1", "pip": "24.0"}
"""Two pins, in this order: setuptools really changes (65.5.0 comes with the venv), pip is already 24.0."""
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def owner(app, module_client):
    return new_user(app, "owner@example.org", is_verified=True)


@pytest.fixture(scope="module")
def collection(module_client, owner, mock_wheel):
    """Collect the mock wheel (with two pins); keep every state of the activity seen while polling."""
    _, headers = owner
    body = {"package": str(mock_wheel), "pinned_package_versions": PINS}
    response = module_client.post(  # (json= would sort the keys, hence the pins)
        "/api/v2/task/collect/pip/", data=json.dumps(body), content_type="application/json", headers=headers
    )
    assert response.status_code == 202, response.json
    history = [response.json]
    final = wait_for_activity(module_client, headers, response.json["id"], history=history, interval=0.25)
    assert final["status"] == "OK", final["log"]
    task_group = module_client.get(f"/api/v2/task-group/{final['taskgroupv2_id']}/", headers=headers).json
    return {"created": response.json, "history": history, "activity": final, "task_group": task_group}


def test_the_endpoint_answers_a_pending_activity(collection, owner):
    created = collection["created"]
    assert created["status"] == "pending"
    assert (created["action"], created["pkg_name"], created["version"]) == ("collect", "fractal-tasks-mock", "0.0.1")
    assert created["user_id"] == owner[0]
    assert created["taskgroupv2_id"] == collection["task_group"]["id"]
    assert created["timestamp_ended"] is None


def test_the_activity_goes_pending_ongoing_ok_and_its_log_grows(collection):
    statuses = [answer["status"] for answer in collection["history"]]
    assert statuses[0] == "pending" and statuses[-1] == "OK"
    assert "ongoing" in statuses
    assert statuses == sorted(statuses, key=["pending", "ongoing", "OK"].index)
    # The log is saved after each step: clients see the steps while they happen.
    ongoing_logs = [answer["log"] for answer in collection["history"] if answer["status"] == "ongoing"]
    assert any("START create venv" in log and "pip freeze" not in log for log in ongoing_logs if log)
    assert collection["activity"]["timestamp_ended"] is not None


def test_the_log_records_every_step(collection, mock_wheel):
    log = collection["activity"]["log"]
    task_group = collection["task_group"]
    venv_python = f"{task_group['venv_path']}/bin/python"
    steps = [
        "create venv", "upgrade pip", "install setuptools", "install package",
        "check that pinned package setuptools is installed", "check that pinned package pip is installed",
        "install pinned versions", "pip freeze", "pip show",
    ]
    positions = [log.index(f"START {step}: ") for step in steps]
    assert positions == sorted(positions)
    for step in steps:
        assert re.search(rf"\[collect-task, [0-9T:.-]+Z\] END {step} \(exit status 0, ", log), step
    assert f"-m venv {task_group['venv_path']} --copies" in log
    assert f"{venv_python} -m pip install --no-cache-dir 'pip<=24.0' --upgrade" in log
    assert f"{venv_python} -m pip install --no-cache-dir {task_group['wheel_path']}\n" in log
    # Several pins: one argument each, in the order given.
    assert f"{venv_python} -m pip install --no-cache-dir setuptools==69.5.1 pip==24.0\n" in log
    assert "Successfully installed setuptools-69.5.1" in log
    assert f"Copied {mock_wheel} to {task_group['wheel_path']}" in log
    assert "Successfully installed fractal-tasks-mock-0.0.1" in log
    site_packages = f"{task_group['venv_path']}/lib/python{PYTHON_VERSION}/site-packages"
    assert f"Manifest absolute path: {site_packages}/fractal_tasks_mock/__FRACTAL_MANIFEST__.json" in log
    assert "END: success." in log
    entries = log_entries(log)
    assert log.splitlines()[0].endswith(entries[0][1]) and len(entries) > 20


def test_the_log_has_the_levels_of_the_reference(collection):
    """Steps and commands at DEBUG, milestones at INFO, interleaved; nothing went wrong."""
    log = collection["activity"]["log"]
    assert level_of(log, "START collection of fractal-tasks-mock 0.0.1") == "DEBUG"
    assert {level for level, message in log_entries(log) if "] START " in message or "] END " in message} == {"DEBUG"}
    assert {level for level, message in log_entries(log) if message in ("stdout:", "stderr:")} == {"DEBUG"}
    assert level_of(log, "Reading and validating the manifest ") == "INFO"
    assert level_of(log, "The manifest is valid: ") == "INFO"
    assert level_of(log, f"Created {len(collection['task_group']['task_list'])} tasks: ") == "INFO"
    assert level_of(log, "END: success.") == "DEBUG"
    levels = [level for level, _ in log_entries(log)]
    assert set(levels) == {"DEBUG", "INFO"}
    first_info = levels.index("INFO")
    assert "DEBUG" in levels[:first_info] and "DEBUG" in levels[first_info:]


def test_the_task_group(collection, tasks_dir, owner, mock_wheel, app):
    task_group = collection["task_group"]
    path = tasks_dir / str(owner[0]) / "fractal-tasks-mock" / "0.0.1"
    assert {
        key: task_group[key]
        for key in ("origin", "pkg_name", "version", "python_version", "path", "venv_path", "wheel_path",
                    "pip_extras", "pinned_package_versions", "active", "user_id")
    } == {
        "origin": "wheel-file",
        "pkg_name": "fractal-tasks-mock",
        "version": "0.0.1",
        "python_version": PYTHON_VERSION,
        "path": str(path),
        "venv_path": str(path / "venv"),
        "wheel_path": str(path / mock_wheel.name),
        "pip_extras": None,
        "pinned_package_versions": PINS,
        "active": True,
        "user_id": owner[0],
    }
    assert list(task_group["pinned_package_versions"]) == list(PINS)  # order kept
    assert task_group["user_group_id"] == 1  # the group `All`
    assert (path / mock_wheel.name).read_bytes() == mock_wheel.read_bytes()
    assert (path / "venv" / "bin" / "python").is_file()
    freeze = task_group["pip_freeze"].splitlines()
    assert any(line.startswith(f"fractal-tasks-mock @ file://{path / mock_wheel.name}") for line in freeze)
    assert {"pip==24.0", "setuptools==69.5.1"} <= set(freeze)
    assert task_group["venv_size_in_kB"] > 1000
    assert task_group["venv_file_number"] > 100
    # The environment really has the pinned version.
    setuptools_version = subprocess.run(
        [str(path / "venv" / "bin" / "python"), "-c", "import setuptools; print(setuptools.__version__)"],
        capture_output=True, text=True,
    ).stdout
    assert setuptools_version.strip() == "69.5.1"


def test_the_tasks(collection, module_client, owner):
    task_group = collection["task_group"]
    python = f"{task_group['venv_path']}/bin/python"
    site_packages = Path(task_group["venv_path"]) / "lib" / f"python{PYTHON_VERSION}" / "site-packages"
    package_root = site_packages / "fractal_tasks_mock"
    manifest = mock_manifest()
    tasks = task_group["task_list"]
    assert [task["name"] for task in tasks] == [entry["name"] for entry in manifest["task_list"]]
    for task, entry in zip(tasks, manifest["task_list"]):
        non_parallel, parallel = entry.get("executable_non_parallel"), entry.get("executable_parallel")
        expected_type = {(True, False): "non_parallel", (False, True): "parallel", (True, True): "compound"}
        assert task["type"] == expected_type[(non_parallel is not None, parallel is not None)]
        for kind, executable in (("non_parallel", non_parallel), ("parallel", parallel)):
            if executable is None:
                assert task[f"command_{kind}"] is None
                continue
            assert task[f"command_{kind}"] == f"{python} {package_root / executable}"
            assert (package_root / executable).is_file()
        assert task["version"] == "0.0.1"
        assert task["authors"] == manifest["authors"]
        assert task["source"] is None
        assert task["args_schema_version"] is None  # has_args_schemas is false
        assert task["taskgroupv2_id"] == task_group["id"]
        for key, default in [("input_types", {}), ("output_types", {}), ("tags", []), ("category", None),
                             ("modality", None), ("docs_info", None), ("docs_link", None),
                             ("meta_parallel", {}), ("meta_non_parallel", {})]:
            assert task[key] == entry.get(key, default), key
    listed = module_client.get("/api/v2/task/", headers=owner[1]).json
    assert [task["id"] for task in listed] == [task["id"] for task in tasks]


def test_a_collected_task_runs_in_its_environment(collection, tmp_path):
    (task,) = [t for t in collection["task_group"]["task_list"] if t["name"] == "generic_non_parallel"]
    args, out = tmp_path / "args.json", tmp_path / "out.json"
    args.write_text(json.dumps({"output": {"image_list_updates": []}}))
    argv = task["command_non_parallel"].split() + ["--args-json", str(args), "--out-json", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text()) == {"image_list_updates": []}


def test_the_same_package_again_is_refused(collection, module_client, owner, mock_wheel):
    response = module_client.post("/api/v2/task/collect/pip/", json={"package": str(mock_wheel)}, headers=owner[1])
    assert response.status_code == 422
    activity_id, group_id = collection["activity"]["id"], collection["task_group"]["id"]
    assert response.json["detail"] == (
        "User 'owner@example.org' already owns a task group with name='fractal-tasks-mock' and version='0.0.1'."
        f"\nNote:There exists another task-group collection (activity ID={activity_id}) "
        f"for this task group (ID={group_id}), with status 'OK'."
    )


def test_deactivate_then_reactivate(collection, module_client, owner, app):
    """Last test of the module: the environment is removed, then rebuilt from the pip freeze."""
    _, headers = owner
    admin_id, admin_headers = new_user(app, "admin@example.org", is_superuser=True, is_verified=True)
    task_group = collection["task_group"]
    group_url = f"/api/v2/task-group/{task_group['id']}/"
    venv, wheel = Path(task_group["venv_path"]), Path(task_group["wheel_path"])

    response = module_client.post(f"{group_url}deactivate/", headers=headers)
    assert response.status_code == 202
    assert (response.json["action"], response.json["status"]) == ("deactivate", "pending")
    assert module_client.get(group_url, headers=headers).json["active"] is False  # at once, by the user endpoint
    activity = wait_for_activity(module_client, headers, response.json["id"])
    assert activity["status"] == "OK", activity["log"]
    assert f"Removed {venv}" in activity["log"]
    assert level_of(activity["log"], f"Removed {venv}") == "INFO"
    assert level_of(activity["log"], "START deactivation of task group") == "DEBUG"
    assert not venv.exists()
    assert wheel.is_file()  # kept inside `path` to rebuild the environment
    after = module_client.get(group_url, headers=headers).json
    assert (after["active"], after["pip_freeze"], after["wheel_path"]) == (False, task_group["pip_freeze"], str(wheel))

    # Reactivation by an administrator, from the stored pip freeze.
    response = module_client.post(f"/admin/v2/task-group/{task_group['id']}/reactivate/", headers=admin_headers)
    assert response.status_code == 202
    assert (response.json["action"], response.json["status"], response.json["user_id"]) == (
        "reactivate", "pending", owner[0]
    )
    activity = wait_for_activity(module_client, headers, response.json["id"])
    assert activity["status"] == "OK", activity["log"]
    assert "START install from pip freeze" in activity["log"]
    assert level_of(activity["log"], "START reactivation of task group") == "DEBUG"
    assert level_of(activity["log"], "Set task_group.active to True") == "INFO"
    assert {level for level, _ in log_entries(activity["log"])} == {"DEBUG", "INFO"}
    assert module_client.get(group_url, headers=headers).json["active"] is True
    freeze = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "freeze", "--all"], capture_output=True, text=True
    ).stdout
    assert sorted(freeze.splitlines()) == sorted(task_group["pip_freeze"].splitlines())
    for task in task_group["task_list"]:
        for command in (task["command_non_parallel"], task["command_parallel"]):
            if command:
                assert Path(command.split()[1]).is_file()
    activities = module_client.get(
        "/api/v2/task-group/activity/", query_string={"taskgroupv2_id": task_group["id"]}, headers=headers
    ).json
    assert [(a["action"], a["status"]) for a in activities] == [
        ("collect", "OK"), ("deactivate", "OK"), ("reactivate", "OK")
    ]
