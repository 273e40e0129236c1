"""Task groups and activities (`api-v2.md` section 9)."""
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import SLURM_SSH_LOOK_ALIKE

from fractal_server.db import db
from fractal_server.db.models import (
    JobV2,
    LinkUserProjectV2,
    ProjectV2,
    TaskGroupActivityV2,
    TaskGroupV2,
    TaskV2,
    User,
    WorkflowTaskV2,
    WorkflowV2,
)

from .factories import all_group_id, create_task, create_task_group, create_user_group, get_row

GROUP_KEYS = {
    "id", "task_list", "user_id", "user_group_id", "origin", "pkg_name", "version", "python_version",
    "path", "venv_path", "wheel_path", "pip_freeze", "pip_extras", "pinned_package_versions",
    "venv_size_in_kB", "venv_file_number", "active", "timestamp_created", "timestamp_last_used",
}
ACTIVITY_KEYS = {
    "id", "user_id", "taskgroupv2_id", "timestamp_started", "timestamp_ended", "pkg_name", "version",
    "status", "action", "log",
}


def workflow_using(app, user_id: int, task_ids: list[int]) -> int:
    """A workflow (in a new project of the user) whose tasks are `task_ids`, in order."""
    with app.app_context():
        project = ProjectV2(name="p")
        db.session.add(project)
        db.session.flush()
        db.session.add(LinkUserProjectV2(project_id=project.id, user_id=user_id))
        workflow = WorkflowV2(name="w", project_id=project.id)
        db.session.add(workflow)
        db.session.flush()
        for order, task_id in enumerate(task_ids):
            db.session.add(WorkflowTaskV2(workflow_id=workflow.id, order=order, task_id=task_id, task_type="compound"))
        db.session.commit()
        return workflow.id


def job_on(app, workflow_id: int, first: int, last: int, status: str = "submitted") -> int:
    with app.app_context():
        job = JobV2(
            workflow_id=workflow_id, user_email="x@example.org", project_dump={}, workflow_dump={},
            dataset_dump={}, first_task_index=first, last_task_index=last, status=status,
        )
        db.session.add(job)
        db.session.commit()
        return job.id


def add_activity(app, user_id: int, task_group_id, *, status="OK", action="collect", pkg_name="pkg",
                 started=None) -> int:
    with app.app_context():
        activity = TaskGroupActivityV2(
            user_id=user_id, taskgroupv2_id=task_group_id, pkg_name=pkg_name, version="1.0.0",
            status=status, action=action, timestamp_started=started or datetime.now(tz=timezone.utc),
        )
        db.session.add(activity)
        db.session.commit()
        return activity.id


def ids(response) -> list[int]:
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json]


# --- GET /api/v2/task-group/ and /api/v2/task-group/{id}/ ---


def test_list_and_read(app, client, alice, bob, make_user):
    alice_id, alice_headers = alice
    bob_id, bob_headers = bob
    _, carol_headers = make_user("carol@example.org")
    lab = create_user_group(app, "lab", [alice_id, bob_id])
    private = create_task_group(app, alice_id, pkg_name="a")
    shared = create_task_group(app, alice_id, pkg_name="b", user_group_id=lab, active=False)
    everyone = create_task_group(app, bob_id, pkg_name="c", user_group_id=all_group_id(app))
    task_id = create_task(app, shared, args_schema_parallel={"x": 1}, args_schema_non_parallel={"y": 2})

    assert ids(client.get("/api/v2/task-group/", headers=alice_headers)) == [private, shared, everyone]
    assert ids(client.get("/api/v2/task-group/", headers=bob_headers)) == [shared, everyone]
    assert ids(client.get("/api/v2/task-group/", headers=carol_headers)) == [everyone]
    assert ids(client.get("/api/v2/task-group/?only_owner=true", headers=alice_headers)) == [private, shared]
    assert ids(client.get("/api/v2/task-group/?only_active=true", headers=alice_headers)) == [private, everyone]
    assert ids(client.get("/api/v2/task-group/?only_active=1&only_owner=yes", headers=alice_headers)) == [private]

    groups = client.get("/api/v2/task-group/", headers=bob_headers).json
    assert set(groups[0]) == GROUP_KEYS
    assert [task["id"] for task in groups[0]["task_list"]] == [task_id]
    assert groups[0]["task_list"][0]["args_schema_parallel"] == {"x": 1}
    assert groups[0]["pinned_package_versions"] == {}
    assert groups[0]["timestamp_created"].endswith("+00:00")
    groups = client.get("/api/v2/task-group/?args_schema=false", headers=bob_headers).json
    assert groups[0]["task_list"][0]["args_schema_parallel"] is None
    assert groups[0]["task_list"][0]["args_schema_non_parallel"] is None

    response = client.get(f"/api/v2/task-group/{shared}/", headers=bob_headers)
    assert (response.status_code, response.json["id"]) == (200, shared)
    response = client.get(f"/api/v2/task-group/{shared}/", headers=carol_headers)
    assert (response.status_code, response.json) == (
        403,
        {"detail": [f"Current user has no read access to TaskGroupV2 {shared}."]},
    )
    response = client.get(f"/api/v2/task-group/{private}/", headers=bob_headers)
    assert response.status_code == 403
    response = client.get("/api/v2/task-group/999/", headers=bob_headers)
    assert (response.status_code, response.json) == (404, {"detail": "TaskGroupV2 999 not found"})
    assert client.get("/api/v2/task-group/").status_code == 401
    assert client.get(f"/api/v2/task-group/{shared}/").status_code == 401


# --- PATCH /api/v2/task-group/{id}/ ---


def test_patch_user_group(app, client, alice, bob):
    alice_id, headers = alice
    bob_id, bob_headers = bob
    lab = create_user_group(app, "lab", [alice_id, bob_id])
    bobs = create_user_group(app, "bobs", [bob_id])
    group_id = create_task_group(app, alice_id, user_group_id=all_group_id(app))
    url = f"/api/v2/task-group/{group_id}/"

    response = client.patch(url, json={"user_group_id": lab}, headers=headers)
    assert (response.status_code, response.json["user_group_id"]) == (200, lab)
    assert set(response.json) == GROUP_KEYS
    response = client.patch(url, json={}, headers=headers)
    assert (response.status_code, response.json["user_group_id"]) == (200, lab)
    response = client.patch(url, json={"user_group_id": None}, headers=headers)
    assert (response.status_code, response.json["user_group_id"]) == (200, None)

    response = client.patch(url, json={"user_group_id": bobs}, headers=headers)
    assert (response.status_code, response.json) == (
        403,
        {"detail": f"User {alice_id} does not belong to UserGroup {bobs}"},
    )
    response = client.patch(url, json={"user_group_id": 999}, headers=headers)
    assert (response.status_code, response.json) == (404, {"detail": "UserGroup 999 not found"})
    response = client.patch(url, json={"user_group_id": lab, "active": False}, headers=headers)
    assert response.json == {
        "detail": [{"loc": ["body", "active"], "msg": "extra fields not permitted", "type": "value_error.extra"}]
    }
    response = client.patch(url, json={"user_group_id": lab}, headers=bob_headers)
    assert (response.status_code, response.json) == (
        403,
        {"detail": [f"Current user has no full access to TaskGroupV2 {group_id}."]},
    )
    response = client.patch("/api/v2/task-group/999/", json={}, headers=headers)
    assert (response.status_code, response.json) == (404, {"detail": "TaskGroupV2 999 not found"})
    assert client.patch(url, json={}).status_code == 401


def test_patch_checks_uniqueness_in_the_new_group(app, client, alice, bob):
    alice_id, headers = alice
    bob_id, _ = bob
    lab = create_user_group(app, "lab", [alice_id, bob_id])
    create_task_group(app, bob_id, pkg_name="pkg", version="1", user_group_id=lab)
    mine = create_task_group(app, alice_id, pkg_name="pkg", version="1")
    response = client.patch(f"/api/v2/task-group/{mine}/", json={"user_group_id": lab}, headers=headers)
    assert (response.status_code, response.json) == (
        422,
        {"detail": "UserGroup lab already owns a task group with pkg_name='pkg' and version='1'."},
    )
    # Unchanged value: no check (the reference behaves the same way).
    theirs = create_task_group(app, alice_id, pkg_name="other", version="1", user_group_id=lab)
    response = client.patch(f"/api/v2/task-group/{theirs}/", json={"user_group_id": lab}, headers=headers)
    assert response.status_code == 200


# --- DELETE /api/v2/task-group/{id}/ ---


def test_delete(app, client, alice, bob):
    alice_id, headers = alice
    bob_id, bob_headers = bob
    group_id = create_task_group(app, alice_id, user_group_id=all_group_id(app))
    first = create_task(app, group_id, name="first")
    second = create_task(app, group_id, name="second")
    activity_id = add_activity(app, alice_id, group_id)
    workflow_id = workflow_using(app, alice_id, [second])

    response = client.delete(f"/api/v2/task-group/{group_id}/", headers=bob_headers)
    assert (response.status_code, response.json) == (
        403,
        {"detail": [f"Current user has no full access to TaskGroupV2 {group_id}."]},
    )
    response = client.delete(f"/api/v2/task-group/{group_id}/", headers=headers)
    assert (response.status_code, response.json) == (422, {"detail": f"TaskV2 {second} is still in use"})

    with app.app_context():
        db.session.delete(db.session.get(WorkflowV2, workflow_id))
        db.session.commit()
    response = client.delete(f"/api/v2/task-group/{group_id}/", headers=headers)
    assert (response.status_code, response.data) == (204, b"")
    assert get_row(app, TaskGroupV2, group_id) is None
    assert get_row(app, TaskV2, first) is None
    assert get_row(app, TaskGroupActivityV2, activity_id)["taskgroupv2_id"] is None
    response = client.delete(f"/api/v2/task-group/{group_id}/", headers=headers)
    assert (response.status_code, response.json) == (404, {"detail": f"TaskGroupV2 {group_id} not found"})
    assert client.delete(f"/api/v2/task-group/{group_id}/").status_code == 401


# --- POST /api/v2/task-group/{id}/deactivate/ and /reactivate/ ---


def test_deactivate_and_reactivate_other_origin(app, client, alice):
    alice_id, headers = alice
    group_id = create_task_group(app, alice_id, pkg_name="mine", version=None)
    response = client.post(f"/api/v2/task-group/{group_id}/deactivate/", headers=headers)
    assert response.status_code == 202, response.json
    activity = response.json
    assert set(activity) == ACTIVITY_KEYS
    assert activity["action"] == "deactivate"
    assert activity["status"] == "OK"
    assert (activity["user_id"], activity["taskgroupv2_id"]) == (alice_id, group_id)
    assert (activity["pkg_name"], activity["version"]) == ("mine", "N/A")
    assert activity["log"] == "Task group has task_group.origin='other', set task_group.active to False and exit."
    assert activity["timestamp_started"] == activity["timestamp_ended"]
    assert get_row(app, TaskGroupV2, group_id)["active"] is False

    response = client.post(f"/api/v2/task-group/{group_id}/deactivate/", headers=headers)
    assert (response.status_code, response.json) == (
        422,
        {"detail": "Cannot deactivate a task group with task_group.active=False."},
    )

    response = client.post(f"/api/v2/task-group/{group_id}/reactivate/", headers=headers)
    assert response.status_code == 202, response.json
    activity = response.json
    assert (activity["action"], activity["status"]) == ("reactivate", "OK")
    assert activity["log"] == "Task group has task_group.origin='other', set task_group.active to True and exit."
    assert get_row(app, TaskGroupV2, group_id)["active"] is True

    response = client.post(f"/api/v2/task-group/{group_id}/reactivate/", headers=headers)
    assert (response.status_code, response.json) == (
        422,
        {"detail": "Cannot reactivate a task group with task_group.active=True."},
    )


def test_deactivate_access(app, client, alice, bob):
    alice_id, headers = alice
    _, bob_headers = bob
    group_id = create_task_group(app, alice_id, user_group_id=all_group_id(app))
    for action in ("deactivate", "reactivate"):
        response = client.post(f"/api/v2/task-group/{group_id}/{action}/", headers=bob_headers)
        assert (response.status_code, response.json) == (
            403,
            {"detail": [f"Current user has no full access to TaskGroupV2 {group_id}."]},
        )
        response = client.post(f"/api/v2/task-group/999/{action}/", headers=headers)
        assert (response.status_code, response.json) == (404, {"detail": "TaskGroupV2 999 not found"})
        assert client.post(f"/api/v2/task-group/{group_id}/{action}/").status_code == 401


def test_ongoing_activity_blocks(app, client, alice):
    alice_id, headers = alice
    group_id = create_task_group(app, alice_id)
    started = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    add_activity(app, alice_id, group_id, status="ongoing", action="collect", started=started)
    add_activity(app, alice_id, group_id, status="failed")
    expected = (
        "Found ongoing activities for the same task-group:\n"
        "1) Action=collect, status=ongoing, timestamp_started=2026-01-02 03:04:05.000006+00:00"
    )
    response = client.post(f"/api/v2/task-group/{group_id}/deactivate/", headers=headers)
    assert (response.status_code, response.json) == (422, {"detail": expected})
    # Reactivation checks `active` first.
    response = client.post(f"/api/v2/task-group/{group_id}/reactivate/", headers=headers)
    assert response.json == {"detail": "Cannot reactivate a task group with task_group.active=True."}
    with app.app_context():
        db.session.get(TaskGroupV2, group_id).active = False
        db.session.commit()
    response = client.post(f"/api/v2/task-group/{group_id}/reactivate/", headers=headers)
    assert (response.status_code, response.json) == (422, {"detail": expected})


def test_submitted_jobs_block_within_their_range(app, client, alice):
    alice_id, headers = alice
    group_id = create_task_group(app, alice_id)
    task_id = create_task(app, group_id)
    other_task = create_task(app, create_task_group(app, alice_id, pkg_name="other"))
    workflow_id = workflow_using(app, alice_id, [other_task, task_id, other_task])
    job_on(app, workflow_id, 0, 0)  # range does not include the task
    job_on(app, workflow_id, 2, 2)
    job_on(app, workflow_id, 0, 2, status="done")
    url = f"/api/v2/task-group/{group_id}/deactivate/"
    assert client.post(url, headers=headers).status_code == 202
    assert client.post(f"/api/v2/task-group/{group_id}/reactivate/", headers=headers).status_code == 202

    job_on(app, workflow_id, 0, 1)
    job_on(app, workflow_id, 1, 2)
    message = {"detail": "Cannot act on task group because 2 submitted jobs use its tasks."}
    response = client.post(url, headers=headers)
    assert (response.status_code, response.json) == (422, message)
    with app.app_context():
        db.session.get(TaskGroupV2, group_id).active = False
        db.session.commit()
    response = client.post(f"/api/v2/task-group/{group_id}/reactivate/", headers=headers)
    assert (response.status_code, response.json) == (422, message)


def wait_for_activity(client, headers, activity_id: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        activity = client.get(f"/api/v2/task-group/activity/{activity_id}/", headers=headers).json
        if activity["status"] not in ("pending", "ongoing"):
            return activity
        time.sleep(0.1)
    raise AssertionError(f"activity {activity_id} still running after {timeout}s")


def test_collected_groups_run_the_background_procedures(app, client, alice):
    """Without an environment on disk, deactivation and reactivation fail and say why."""
    alice_id, headers = alice
    group_id = create_task_group(app, alice_id, origin="pypi", pkg_name="pkg", version="1.0.0")
    response = client.post(f"/api/v2/task-group/{group_id}/deactivate/", headers=headers)
    assert response.status_code == 202
    assert (response.json["action"], response.json["status"], response.json["version"]) == (
        "deactivate",
        "pending",
        "1.0.0",
    )
    activity = wait_for_activity(client, headers, response.json["id"])
    assert activity["status"] == "failed"
    assert "does not exist" in activity["log"]
    assert activity["timestamp_ended"] is not None
    assert get_row(app, TaskGroupV2, group_id)["active"] is False

    response = client.post(f"/api/v2/task-group/{group_id}/reactivate/", headers=headers)
    assert (response.status_code, response.json) == (
        422,
        {"detail": "Cannot reactivate a task group with task_group.pip_freeze=None."},
    )
    with app.app_context():
        db.session.get(TaskGroupV2, group_id).pip_freeze = "pkg==1.0.0"
        db.session.commit()
    response = client.post(f"/api/v2/task-group/{group_id}/reactivate/", headers=headers)
    assert (response.status_code, response.json["action"], response.json["status"]) == (202, "reactivate", "pending")
    activity = wait_for_activity(client, headers, response.json["id"])
    assert activity["status"] == "failed"
    assert get_row(app, TaskGroupV2, group_id)["active"] is False


@pytest.fixture
def slurm_ssh_backend(replace_backend):
    """Pretend the server runs the `slurm_ssh` backend."""
    replace_backend(**SLURM_SSH_LOOK_ALIKE, required_user_settings=("ssh_host", "ssh_tasks_dir"))


def test_ssh_settings_are_validated_before_any_change(app, client, alice, slurm_ssh_backend):
    alice_id, headers = alice
    group_id = create_task_group(app, alice_id, origin="pypi", pip_freeze="pkg==1.0.0")
    message = (
        "User settings are not valid for FRACTAL_RUNNER_BACKEND='slurm_ssh'. "
        "Original error: missing ssh_host, ssh_tasks_dir"
    )
    response = client.post(f"/api/v2/task-group/{group_id}/deactivate/", headers=headers)
    assert (response.status_code, response.json) == (422, {"detail": message})
    assert get_row(app, TaskGroupV2, group_id)["active"] is True
    with app.app_context():
        db.session.get(TaskGroupV2, group_id).active = False
        db.session.commit()
    response = client.post(f"/api/v2/task-group/{group_id}/reactivate/", headers=headers)
    assert (response.status_code, response.json) == (422, {"detail": message})
    with app.app_context():
        assert db.session.query(TaskGroupActivityV2).count() == 0
        settings = db.session.get(User, alice_id).settings
        settings.ssh_host, settings.ssh_tasks_dir = "host", "/tasks"
        db.session.commit()
    response = client.post(f"/api/v2/task-group/{group_id}/reactivate/", headers=headers)
    assert (response.status_code, response.json["status"]) == (202, "pending")
    activity = wait_for_activity(client, headers, response.json["id"])
    assert activity["status"] == "failed"
    assert "the look-alike remote host cannot be reached" in activity["log"]
    # Groups of origin `other` need no settings.
    other = create_task_group(app, alice_id, pkg_name="other")
    with app.app_context():
        db.session.get(User, alice_id).settings.ssh_host = None
        db.session.commit()
    assert client.post(f"/api/v2/task-group/{other}/deactivate/", headers=headers).status_code == 202


# --- GET /api/v2/task-group/activity/ and /activity/{id}/ ---


def test_list_activities_with_filters(app, client, alice, bob):
    alice_id, headers = alice
    bob_id, _ = bob
    group_id = create_task_group(app, alice_id)
    now = datetime.now(tz=timezone.utc)
    first = add_activity(app, alice_id, group_id, pkg_name="Fractal-Tasks", started=now - timedelta(days=2))
    second = add_activity(app, alice_id, None, action="deactivate", status="failed", pkg_name="other")
    add_activity(app, bob_id, group_id)

    def listed(**params):
        return ids(client.get("/api/v2/task-group/activity/", query_string=params, headers=headers))

    assert listed() == [first, second]
    assert listed(task_group_activity_id=second) == [second]
    assert listed(taskgroupv2_id=group_id) == [first]
    assert listed(pkg_name="tasks") == [first]
    assert listed(status="failed") == [second]
    assert listed(action="collect") == [first]
    assert listed(timestamp_started_min=(now - timedelta(days=1)).isoformat()) == [second]
    assert listed(timestamp_started_min="2000-01-01T00:00:00Z") == [first, second]

    response = client.get(
        "/api/v2/task-group/activity/", query_string={"timestamp_started_min": "2026-01-02T03:04:05"}, headers=headers
    )
    assert (response.status_code, response.json) == (
        422,
        {
            "detail": [
                {
                    "loc": ["query", "timestamp_started_min"],
                    "msg": "timestamp=datetime.datetime(2026, 1, 2, 3, 4, 5) is naive. You must provide a timezone.",
                    "type": "value_error",
                }
            ]
        },
    )
    response = client.get("/api/v2/task-group/activity/?status=done", headers=headers)
    assert response.status_code == 422
    assert response.json["detail"][0]["type"] == "type_error.enum"
    assert response.json["detail"][0]["ctx"] == {"enum_values": ["pending", "ongoing", "failed", "OK"]}
    assert client.get("/api/v2/task-group/activity/").status_code == 401


def test_read_activity(app, client, alice, bob):
    alice_id, headers = alice
    _, bob_headers = bob
    activity_id = add_activity(app, alice_id, None)
    response = client.get(f"/api/v2/task-group/activity/{activity_id}/", headers=headers)
    assert response.status_code == 200
    assert set(response.json) == ACTIVITY_KEYS
    assert (response.json["id"], response.json["taskgroupv2_id"], response.json["log"]) == (activity_id, None, None)
    response = client.get(f"/api/v2/task-group/activity/{activity_id}/", headers=bob_headers)
    assert (response.status_code, response.json) == (
        403,
        {"detail": [f"You are not the owner of TaskGroupActivityV2 {activity_id}"]},
    )
    response = client.get("/api/v2/task-group/activity/999/", headers=headers)
    assert (response.status_code, response.json) == (404, {"detail": "TaskGroupActivityV2 999 not found"})
    assert client.get(f"/api/v2/task-group/activity/{activity_id}/").status_code == 401
