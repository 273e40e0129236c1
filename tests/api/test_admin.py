"""Admin endpoints of `api-v2.md` section 12 (projects, tasks, task groups, activities)."""
import time
from datetime import datetime, timedelta, timezone

import pytest

from fractal_server.db import db
from fractal_server.db.models import (
    LinkUserProjectV2,
    ProjectV2,
    TaskGroupActivityV2,
    TaskGroupV2,
    TaskV2,
    WorkflowTaskV2,
    WorkflowV2,
)

from .factories import create_task, create_task_group, create_user_group, get_row


def ids(response) -> list[int]:
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json]


def project_of(app, user_ids, name="project") -> int:
    with app.app_context():
        project = ProjectV2(name=name)
        db.session.add(project)
        db.session.flush()
        for user_id in user_ids:
            db.session.add(LinkUserProjectV2(project_id=project.id, user_id=user_id))
        db.session.commit()
        return project.id


def workflow_with(app, project_id: int, task_ids, name="workflow") -> int:
    with app.app_context():
        workflow = WorkflowV2(name=name, project_id=project_id)
        db.session.add(workflow)
        db.session.flush()
        for order, task_id in enumerate(task_ids):
            db.session.add(WorkflowTaskV2(workflow_id=workflow.id, order=order, task_id=task_id, task_type="compound"))
        db.session.commit()
        return workflow.id


def add_activity(app, user_id, task_group_id, **columns) -> int:
    values = {"pkg_name": "pkg", "version": "1", "status": "OK", "action": "collect", **columns}
    with app.app_context():
        activity = TaskGroupActivityV2(user_id=user_id, taskgroupv2_id=task_group_id, **values)
        db.session.add(activity)
        db.session.commit()
        return activity.id


ENDPOINTS = [
    ("GET", "/admin/v2/project/"),
    ("GET", "/admin/v2/task/"),
    ("GET", "/admin/v2/task-group/"),
    ("GET", "/admin/v2/task-group/1/"),
    ("PATCH", "/admin/v2/task-group/1/"),
    ("DELETE", "/admin/v2/task-group/1/"),
    ("POST", "/admin/v2/task-group/1/deactivate/"),
    ("POST", "/admin/v2/task-group/1/reactivate/"),
    ("GET", "/admin/v2/task-group/activity/"),
]


@pytest.mark.parametrize("method, url", ENDPOINTS)
def test_superuser_only(client, make_user, method, url):
    assert client.open(url, method=method, json={}).status_code == 401
    _, headers = make_user("verified@example.org", is_verified=True)
    response = client.open(url, method=method, json={}, headers=headers)
    assert (response.status_code, response.json) == (403, {"detail": "Forbidden"})


def test_projects(app, client, alice, superuser):
    alice_id, _ = alice
    admin_id, headers = superuser
    first = project_of(app, [alice_id])
    second = project_of(app, [alice_id, admin_id])
    third = project_of(app, [])
    assert ids(client.get("/admin/v2/project/", headers=headers)) == [first, second, third]
    assert ids(client.get(f"/admin/v2/project/?user_id={alice_id}", headers=headers)) == [first, second]
    assert ids(client.get(f"/admin/v2/project/?user_id={admin_id}&id={first}", headers=headers)) == []
    assert ids(client.get(f"/admin/v2/project/?id={third}", headers=headers)) == [third]
    response = client.get("/admin/v2/project/", headers=headers).json[0]
    assert set(response) == {"id", "name", "timestamp_created"}
    response = client.get("/admin/v2/project/?id=x", headers=headers)
    assert response.status_code == 422
    assert response.json["detail"][0]["loc"] == ["query", "id"]


def test_tasks(app, client, alice, superuser):
    alice_id, _ = alice
    admin_id, headers = superuser
    group = create_task_group(app, alice_id)
    first = create_task(
        app, group, name="Cellpose Segmentation", source="pip:cellpose", version="1.0", category="Segmentation",
        modality="HCS", authors="Jane Doe",
    )
    second = create_task(app, group, name="Illumination", version="2.0", type="parallel", modality="hcs")
    project = project_of(app, [admin_id, alice_id], name="P")
    workflow = workflow_with(app, project, [first, second, first], name="W")
    other_workflow = workflow_with(app, project_of(app, []), [first], name="W2")

    response = client.get("/admin/v2/task/", headers=headers)
    assert response.status_code == 200
    first_info, second_info = response.json
    assert first_info["task"] == {
        "id": first, "name": "Cellpose Segmentation", "type": "compound", "taskgroupv2_id": group,
        "command_non_parallel": "python3 init.py", "command_parallel": "python3 run.py",
        "source": "pip:cellpose", "version": "1.0",
    }
    assert first_info["relationships"] == [
        {
            "workflow_id": workflow, "workflow_name": "W", "project_id": project, "project_name": "P",
            "project_users": [{"id": alice_id, "email": "alice@example.org"}, {"id": admin_id, "email": "admin@example.org"}],
        },
        {
            "workflow_id": other_workflow, "workflow_name": "W2", "project_id": project + 1, "project_name": "project",
            "project_users": [],
        },
    ]
    assert [r["workflow_id"] for r in second_info["relationships"]] == [workflow]

    def listed(query):
        return [item["task"]["id"] for item in client.get(f"/admin/v2/task/{query}", headers=headers).json]

    assert listed(f"?id={second}") == [second]
    assert listed("?source=CELLPOSE") == [first]
    assert listed("?version=2.0") == [second]
    assert listed("?version=2") == []
    assert listed("?name=segment") == [first]
    assert listed("?category=segmentation") == [first]
    assert listed("?modality=HCS") == [first, second]
    assert listed("?author=doe") == [first]

    response = client.get("/admin/v2/task/?max_number_of_results=1", headers=headers)
    assert (response.status_code, response.json) == (
        422,
        {"detail": "Too many Tasks (2 > 1). Please add more query filters."},
    )
    assert listed("?max_number_of_results=1&name=illu") == [second]


def test_list_task_groups_with_filters(app, client, alice, superuser):
    alice_id, _ = alice
    admin_id, headers = superuser
    lab = create_user_group(app, "lab", [alice_id])
    now = datetime.now(tz=timezone.utc)
    first = create_task_group(app, alice_id, pkg_name="Fractal-Tasks", origin="pypi",
                              timestamp_last_used=now - timedelta(days=10))
    second = create_task_group(app, alice_id, pkg_name="mine", user_group_id=lab, active=False)
    third = create_task_group(app, admin_id, pkg_name="tasks-admin", origin="wheel-file", user_group_id=lab)

    def listed(**params):
        return ids(client.get("/admin/v2/task-group/", query_string=params, headers=headers))

    assert listed() == [first, second, third]
    assert listed(user_id=alice_id) == [first, second]
    assert listed(user_group_id=lab) == [second, third]
    assert listed(private="true") == [first]
    assert listed(private="false") == [second, third]
    assert listed(private="false", user_group_id=lab, user_id=admin_id) == [third]
    assert listed(active="false") == [second]
    assert listed(pkg_name="TASKS") == [first, third]
    assert listed(origin="wheel-file") == [third]
    assert listed(timestamp_last_used_min=(now - timedelta(days=1)).isoformat()) == [second, third]
    assert listed(timestamp_last_used_max=(now - timedelta(days=1)).isoformat()) == [first]

    response = client.get(f"/admin/v2/task-group/?user_group_id={lab}&private=true", headers=headers)
    assert (response.status_code, response.json) == (
        422,
        {"detail": f"Cannot get task groups with both user_group_id={lab} and private=True."},
    )
    response = client.get("/admin/v2/task-group/?origin=conda", headers=headers)
    assert response.status_code == 422
    assert response.json["detail"][0]["type"] == "type_error.enum"
    response = client.get(
        "/admin/v2/task-group/", query_string={"timestamp_last_used_max": "2026-01-01T00:00:00"}, headers=headers
    )
    assert (response.status_code, response.json["detail"][0]["msg"]) == (
        422,
        "timestamp=datetime.datetime(2026, 1, 1, 0, 0) is naive. You must provide a timezone.",
    )


def test_read_patch_delete_task_group(app, client, alice, superuser):
    alice_id, _ = alice
    admin_id, headers = superuser
    mine = create_user_group(app, "admins", [admin_id])
    theirs = create_user_group(app, "lab", [alice_id])
    group_id = create_task_group(app, alice_id, pkg_name="pkg", version="1")
    create_task_group(app, alice_id, pkg_name="pkg", version="1", user_group_id=mine)
    task_id = create_task(app, group_id)
    activity_id = add_activity(app, alice_id, group_id)
    url = f"/admin/v2/task-group/{group_id}/"

    response = client.get(url, headers=headers)
    assert (response.status_code, response.json["user_id"]) == (200, alice_id)
    response = client.get("/admin/v2/task-group/999/", headers=headers)
    assert (response.status_code, response.json) == (404, {"detail": "TaskGroup 999 not found"})

    # No uniqueness check for administrators.
    response = client.patch(url, json={"user_group_id": mine}, headers=headers)
    assert (response.status_code, response.json["user_group_id"]) == (200, mine)
    response = client.patch(url, json={"user_group_id": theirs}, headers=headers)
    assert (response.status_code, response.json) == (
        403,
        {"detail": f"User {admin_id} does not belong to UserGroup {theirs}"},
    )
    response = client.patch(url, json={"user_group_id": 999}, headers=headers)
    assert (response.status_code, response.json) == (404, {"detail": "UserGroup 999 not found"})
    response = client.patch(url, json={"user_group_id": None}, headers=headers)
    assert (response.status_code, response.json["user_group_id"]) == (200, None)
    response = client.patch(url, json={"pkg_name": "x"}, headers=headers)
    assert response.json["detail"][0]["type"] == "value_error.extra"
    response = client.patch("/admin/v2/task-group/999/", json={}, headers=headers)
    assert (response.status_code, response.json) == (404, {"detail": "TaskGroupV2 999 not found"})

    workflow_id = workflow_with(app, project_of(app, [alice_id]), [task_id])
    response = client.delete(url, headers=headers)
    assert (response.status_code, response.json) == (422, {"detail": f"TaskV2 {task_id} is still in use"})
    with app.app_context():
        db.session.delete(db.session.get(WorkflowV2, workflow_id))
        db.session.commit()
    assert client.delete(url, headers=headers).status_code == 204
    assert get_row(app, TaskV2, task_id) is None
    assert get_row(app, TaskGroupActivityV2, activity_id)["taskgroupv2_id"] is None
    response = client.delete(url, headers=headers)
    assert (response.status_code, response.json) == (404, {"detail": f"TaskGroupV2 {group_id} not found"})


def test_deactivate_and_reactivate(app, client, alice, superuser):
    alice_id, _ = alice
    _, headers = superuser
    group_id = create_task_group(app, alice_id, version="1")
    url = f"/admin/v2/task-group/{group_id}"
    response = client.post(f"{url}/deactivate/", headers=headers)
    assert response.status_code == 202
    assert (response.json["user_id"], response.json["status"], response.json["action"]) == (alice_id, "OK", "deactivate")
    assert response.json["version"] == "1"
    assert get_row(app, TaskGroupV2, group_id)["active"] is False

    # The admin deactivation checks `active` before ongoing activities.
    add_activity(app, alice_id, group_id, status="ongoing")
    response = client.post(f"{url}/deactivate/", headers=headers)
    assert (response.status_code, response.json) == (
        422,
        {"detail": "Cannot deactivate a task group with task_group.active=False."},
    )
    response = client.post(f"{url}/reactivate/", headers=headers)
    assert response.status_code == 422
    assert response.json["detail"].startswith("Found ongoing activities for the same task-group:\n1) Action=collect")
    with app.app_context():
        db.session.query(TaskGroupActivityV2).update({"status": "OK"})
        db.session.commit()
    response = client.post(f"{url}/reactivate/", headers=headers)
    assert (response.status_code, response.json["user_id"], response.json["action"]) == (202, alice_id, "reactivate")
    assert get_row(app, TaskGroupV2, group_id)["active"] is True
    response = client.post(f"{url}/reactivate/", headers=headers)
    assert response.json == {"detail": "Cannot reactivate a task group with task_group.active=True."}
    for action in ("deactivate", "reactivate"):
        response = client.post(f"/admin/v2/task-group/999/{action}/", headers=headers)
        assert (response.status_code, response.json) == (404, {"detail": "TaskGroupV2 999 not found"})


def test_collected_group_deactivation_leaves_active_to_the_background(app, client, alice, superuser):
    """The admin endpoint does not touch `active`; the failed background work neither."""
    alice_id, _ = alice
    _, headers = superuser
    group_id = create_task_group(app, alice_id, origin="wheel-file")
    response = client.post(f"/admin/v2/task-group/{group_id}/deactivate/", headers=headers)
    assert response.status_code == 202
    assert (response.json["user_id"], response.json["status"]) == (alice_id, "pending")
    activity_id = response.json["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        (activity,) = client.get(
            "/admin/v2/task-group/activity/", query_string={"task_group_activity_id": activity_id}, headers=headers
        ).json
        if activity["status"] not in ("pending", "ongoing"):
            break
        time.sleep(0.1)
    assert activity["status"] == "failed"
    assert get_row(app, TaskGroupV2, group_id)["active"] is True


def test_list_activities(app, client, alice, superuser):
    alice_id, _ = alice
    admin_id, headers = superuser
    group_id = create_task_group(app, alice_id)
    old = datetime(2020, 1, 1, tzinfo=timezone.utc)
    first = add_activity(app, alice_id, group_id, pkg_name="Fractal-Tasks", timestamp_started=old)
    second = add_activity(app, admin_id, None, action="reactivate", status="failed")

    def listed(**params):
        return ids(client.get("/admin/v2/task-group/activity/", query_string=params, headers=headers))

    assert listed() == [first, second]
    assert listed(user_id=alice_id) == [first]
    assert listed(task_group_activity_id=second) == [second]
    assert listed(taskgroupv2_id=group_id) == [first]
    assert listed(pkg_name="fractal") == [first]
    assert listed(status="failed", action="reactivate") == [second]
    assert listed(timestamp_started_min="2021-01-01T00:00:00+00:00") == [second]
    response = client.get(
        "/admin/v2/task-group/activity/", query_string={"timestamp_started_min": "2021-01-01T00:00:00"}, headers=headers
    )
    assert response.status_code == 422
    assert response.json["detail"][0]["loc"] == ["query", "timestamp_started_min"]
    response = client.get("/admin/v2/task-group/activity/?action=delete", headers=headers)
    assert response.status_code == 422
