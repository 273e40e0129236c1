"""Deactivation and reactivation failures, and recovery after a server crash (no environments built)."""
import socket

from conftest import SLURM_SSH_LOOK_ALIKE

from fractal_server.config.settings import tasks_python_key
from fractal_server.db import db, utc_now
from fractal_server.db.models import TaskGroupActivityV2, TaskGroupV2, TaskV2, User
from fractal_server.process_identity import this_process_id
from fractal_server.task_collection.background import fail_orphaned_activities

from .helpers import level_of, wait_for_activity

DEAD_PROCESS = f"{socket.gethostname()}:999999999:12345"


def collected_group(app, path, **columns) -> int:
    """A task group as a collection leaves it, without creating its environment."""
    with app.app_context():
        fields = {
            "user_id": 1, "origin": "pypi", "pkg_name": "pkg", "version": "1.0", "python_version": None,
            "path": str(path), "venv_path": str(path / "venv"), "pip_freeze": "pkg==1.0\n", "active": True,
            **columns,
        }
        task_group = TaskGroupV2(
            task_list=[TaskV2(name="t", type="parallel", command_parallel="python t.py")], **fields
        )
        db.session.add(task_group)
        db.session.commit()
        return task_group.id


def group(app, group_id):
    with app.app_context():
        task_group = db.session.get(TaskGroupV2, group_id)
        return None if task_group is None else {"active": task_group.active, "wheel_path": task_group.wheel_path}


def test_deactivating_without_environment_fails_and_keeps_the_group(app, client, alice, superuser, tmp_path):
    _, headers = alice
    group_id = collected_group(app, tmp_path / "pkg")
    response = client.post(f"/api/v2/task-group/{group_id}/deactivate/", headers=headers)
    assert (response.status_code, response.json["status"]) == (202, "pending")
    activity = wait_for_activity(client, headers, response.json["id"])
    assert activity["status"] == "failed"
    assert level_of(activity["log"], f"{tmp_path / 'pkg' / 'venv'} does not exist.") == "ERROR"
    assert level_of(activity["log"], "END: failure.") == "DEBUG"
    assert group(app, group_id) == {"active": False, "wheel_path": None}  # kept; inactive as the user asked

    # The admin endpoint leaves `active` to the background work, which failed.
    other = collected_group(app, tmp_path / "other", pkg_name="other")
    response = client.post(f"/admin/v2/task-group/{other}/deactivate/", headers=superuser[1])
    activity = wait_for_activity(client, headers, response.json["id"])
    assert activity["status"] == "failed"
    assert group(app, other)["active"] is True


def test_a_folder_that_is_not_an_environment_is_not_removed(app, client, alice, tmp_path):
    _, headers = alice
    group_id = collected_group(app, tmp_path / "pkg")
    (tmp_path / "pkg" / "venv").mkdir(parents=True)
    (tmp_path / "pkg" / "venv" / "precious.txt").write_text("data")
    response = client.post(f"/api/v2/task-group/{group_id}/deactivate/", headers=headers)
    activity = wait_for_activity(client, headers, response.json["id"])
    assert activity["status"] == "failed"
    assert "is not a virtual environment (it has no pyvenv.cfg): not removing it." in activity["log"]
    assert (tmp_path / "pkg" / "venv" / "precious.txt").exists()


def test_deactivating_a_wheel_group_needs_its_wheel(app, client, alice, tmp_path):
    _, headers = alice
    path = tmp_path / "pkg"
    (path / "venv").mkdir(parents=True)
    (path / "venv" / "pyvenv.cfg").write_text("")
    group_id = collected_group(app, path, origin="wheel-file", wheel_path=str(tmp_path / "gone.whl"))
    response = client.post(f"/api/v2/task-group/{group_id}/deactivate/", headers=headers)
    activity = wait_for_activity(client, headers, response.json["id"])
    assert activity["status"] == "failed"
    assert f"The wheel file of the task group ({tmp_path / 'gone.whl'}) does not exist." in activity["log"]
    assert (path / "venv").exists()


def test_deactivation_copies_an_outside_wheel_into_path(app, client, alice, tmp_path):
    """Groups collected before wheels were kept inside `path`."""
    _, headers = alice
    path = tmp_path / "pkg"
    (path / "venv").mkdir(parents=True)
    (path / "venv" / "pyvenv.cfg").write_text("")
    outside = tmp_path / "pkg-1.0-py3-none-any.whl"
    outside.write_bytes(b"wheel")
    group_id = collected_group(
        app, path, origin="wheel-file", wheel_path=str(outside), pip_freeze=f"pkg @ file://{outside}\n"
    )
    response = client.post(f"/api/v2/task-group/{group_id}/deactivate/", headers=headers)
    activity = wait_for_activity(client, headers, response.json["id"])
    assert activity["status"] == "OK", activity["log"]
    assert not (path / "venv").exists()
    copy = path / outside.name
    assert copy.read_bytes() == b"wheel"
    with app.app_context():
        task_group = db.session.get(TaskGroupV2, group_id)
        assert (task_group.wheel_path, task_group.pip_freeze) == (str(copy), f"pkg @ file://{copy}\n")


def test_reactivating_over_an_existing_environment_fails(app, client, alice, tmp_path):
    _, headers = alice
    group_id = collected_group(app, tmp_path / "pkg", active=False)
    (tmp_path / "pkg" / "venv").mkdir(parents=True)
    response = client.post(f"/api/v2/task-group/{group_id}/reactivate/", headers=headers)
    activity = wait_for_activity(client, headers, response.json["id"])
    assert activity["status"] == "failed"
    assert f"{tmp_path / 'pkg' / 'venv'} already exists." in activity["log"]
    assert (tmp_path / "pkg" / "venv").exists()
    assert group(app, group_id)["active"] is False


def test_reactivation_with_an_unavailable_python(app, client, alice, tmp_path):
    _, headers = alice
    group_id = collected_group(app, tmp_path / "pkg", active=False, python_version="3.9")
    response = client.post(f"/api/v2/task-group/{group_id}/reactivate/", headers=headers)
    activity = wait_for_activity(client, headers, response.json["id"])
    assert activity["status"] == "failed"
    assert "Python version 3.9 is not available for Fractal task collection." in activity["log"]


def test_failed_reactivation_removes_the_new_environment(app, client, alice, tmp_path, monkeypatch):
    """Here the interpreter makes the folder of the environment, then fails."""
    _, headers = alice
    python = tmp_path / "python"
    python.write_text('#!/bin/sh\nmkdir -p "$3/bin"\necho "no luck" >&2\nexit 3\n')
    python.chmod(0o755)
    settings = app.extensions["fractal"].settings
    monkeypatch.setattr(settings, tasks_python_key(settings.FRACTAL_TASKS_PYTHON_DEFAULT_VERSION), str(python))
    group_id = collected_group(app, tmp_path / "pkg", active=False)
    response = client.post(f"/api/v2/task-group/{group_id}/reactivate/", headers=headers)
    activity = wait_for_activity(client, headers, response.json["id"])
    assert activity["status"] == "failed"
    venv = tmp_path / "pkg" / "venv"
    assert f"START create venv: {python} -m venv {venv} --copies" in activity["log"]
    assert "stderr:\nno luck" in activity["log"]
    assert level_of(activity["log"], "stderr:") == "DEBUG"
    assert level_of(activity["log"], "create venv failed with exit status 3.") == "ERROR"
    assert level_of(activity["log"], f"Removed {venv}") == "INFO"
    assert not venv.exists()
    assert group(app, group_id)["active"] is False


def test_an_unreachable_remote_host_fails_the_activity_and_keeps_the_group(
    app, client, alice, replace_backend, tmp_path
):
    alice_id, headers = alice
    replace_backend(**SLURM_SSH_LOOK_ALIKE, required_user_settings=())
    with app.app_context():
        db.session.get(User, alice_id).settings.ssh_tasks_dir = str(tmp_path)
        db.session.commit()
    group_id = collected_group(app, tmp_path / "pkg")
    response = client.post(f"/api/v2/task-group/{group_id}/deactivate/", headers=headers)
    assert (response.status_code, response.json["status"]) == (202, "pending")
    activity = wait_for_activity(client, headers, response.json["id"])
    assert activity["status"] == "failed"
    assert "the look-alike remote host cannot be reached" in activity["log"]
    assert group(app, group_id) is not None  # kept, as after any failed deactivation


# --- Recovery after a crash ---


def activity_row(app, group_id, action, status, process_id, log="earlier steps") -> int:
    with app.app_context():
        activity = TaskGroupActivityV2(
            user_id=1, taskgroupv2_id=group_id, pkg_name="pkg", version="1.0", action=action,
            status=status, process_id=process_id, log=log, timestamp_started=utc_now(),
        )
        db.session.add(activity)
        db.session.commit()
        return activity.id


def activity(app, activity_id):
    with app.app_context():
        row = db.session.get(TaskGroupActivityV2, activity_id)
        return {"status": row.status, "log": row.log, "ended": row.timestamp_ended, "group": row.taskgroupv2_id}


def test_activities_of_dead_processes_are_failed(app, client, alice, tmp_path):
    # A collection that was running: its folder and its task group go.
    collecting = collected_group(app, tmp_path / "collecting", pkg_name="collecting")
    (tmp_path / "collecting" / "venv" / "lib").mkdir(parents=True)
    collect_id = activity_row(app, collecting, "collect", "ongoing", DEAD_PROCESS)
    # A collection that had not started: its task group goes, nothing on disk is touched.
    waiting = collected_group(app, tmp_path / "waiting", pkg_name="waiting")
    (tmp_path / "waiting").mkdir()
    waiting_id = activity_row(app, waiting, "collect", "pending", DEAD_PROCESS)
    # A reactivation that was running: its half-made environment goes, the group stays inactive.
    reactivating = collected_group(app, tmp_path / "reactivating", pkg_name="reactivating", active=False)
    (tmp_path / "reactivating" / "venv").mkdir(parents=True)
    (tmp_path / "reactivating" / "venv" / "pyvenv.cfg").write_text("")
    reactivate_id = activity_row(app, reactivating, "reactivate", "ongoing", DEAD_PROCESS)
    # A deactivation that was running.
    deactivating = collected_group(app, tmp_path / "deactivating", pkg_name="deactivating", active=False)
    deactivate_id = activity_row(app, deactivating, "deactivate", "ongoing", DEAD_PROCESS)
    # Left alone: work of this (living) process, finished work, and rows that name no process.
    mine = activity_row(app, deactivating, "deactivate", "ongoing", this_process_id())
    finished = activity_row(app, deactivating, "deactivate", "OK", DEAD_PROCESS)
    unknown = activity_row(app, deactivating, "deactivate", "pending", None)

    with app.app_context():
        fail_orphaned_activities()

    for activity_id in (collect_id, waiting_id, reactivate_id, deactivate_id):
        state = activity(app, activity_id)
        assert state["status"] == "failed" and state["ended"] is not None
        assert state["log"].startswith("earlier steps\n")
        assert (
            f"failed: the server process that ran it ({DEAD_PROCESS}) is no longer running" in state["log"]
        )
        assert "it was probably killed or crashed." in state["log"]
    assert not (tmp_path / "collecting").exists()
    assert (tmp_path / "waiting").exists()
    assert group(app, collecting) is None and group(app, waiting) is None
    assert activity(app, collect_id)["group"] is None
    assert f"Deleted task group {collecting}." in activity(app, collect_id)["log"]
    assert not (tmp_path / "reactivating" / "venv").exists()
    assert group(app, reactivating)["active"] is False
    assert f"Task group {deactivating} left with active=False." in activity(app, deactivate_id)["log"]
    assert [activity(app, i)["status"] for i in (mine, finished, unknown)] == ["ongoing", "OK", "pending"]


def test_the_job_executor_runs_the_recovery(app, client, tmp_path):
    from fractal_server.runner.executor import JobExecutor

    from fractal_server.auth.accounts import create_user

    with app.app_context():
        create_user("alice@example.org", "password")
    group_id = collected_group(app, tmp_path / "pkg")
    activity_id = activity_row(app, group_id, "collect", "pending", DEAD_PROCESS)
    executor = JobExecutor(app, app.extensions["fractal"].backend)
    executor.start()
    executor.shutdown(grace_seconds=1)
    assert activity(app, activity_id)["status"] == "failed"
