"""Workflows: list, create, read (with warnings), patch, delete (`api-v2.md` section 7)."""
import pytest

from fractal_server.db.models import JobV2, WorkflowTaskV2

from .factories import (
    add_workflow_task,
    create_job,
    create_project,
    create_task,
    create_task_group,
    create_task_with_group,
    create_user_group,
    create_workflow,
    get_row,
    remove_from_group,
    set_job_status,
    set_task_group_active,
)

TASK_KEYS = {
    "id", "name", "type", "source", "version", "command_non_parallel", "command_parallel",
    "meta_parallel", "meta_non_parallel", "args_schema_non_parallel", "args_schema_parallel",
    "args_schema_version", "docs_info", "docs_link", "input_types", "output_types",
    "taskgroupv2_id", "category", "modality", "authors", "tags",
}
WFTASK_KEYS = {
    "id", "workflow_id", "order", "meta_non_parallel", "meta_parallel", "args_non_parallel",
    "args_parallel", "input_filters", "task_type", "task_id", "task",
}


def url(project_id, workflow_id=None):
    base = f"/api/v2/project/{project_id}/workflow/"
    return base if workflow_id is None else f"{base}{workflow_id}/"


def detail(response):
    return response.json["detail"]


# --- Ownership (helper W) ---------------------------------------------------


def test_workflow_access_errors(client, alice, bob):
    _, headers = alice
    _, bob_headers = bob
    project_id = create_project(client, headers)
    other_project_id = create_project(client, headers, "other")
    workflow_id = create_workflow(client, headers, project_id)
    for method in ("get", "patch", "delete"):
        call = getattr(client, method)
        body = {"name": "new"} if method == "patch" else None
        response = call(url(999, workflow_id), json=body, headers=headers)
        assert (response.status_code, detail(response)) == (404, "Project not found")
        response = call(url(project_id, workflow_id), json=body, headers=bob_headers)
        assert (response.status_code, detail(response)) == (403, f"Not allowed on project {project_id}")
        response = call(url(project_id, 999), json=body, headers=headers)
        assert (response.status_code, detail(response)) == (404, "Workflow not found")
        response = call(url(other_project_id, workflow_id), json=body, headers=headers)
        assert response.status_code == 422
        assert detail(response) == f"Invalid project_id={other_project_id} for workflow_id={workflow_id}."


def test_anonymous_and_bad_path(client, alice):
    assert client.get("/api/v2/workflow/").status_code == 401
    assert client.post(url(1), json={"name": "x"}).status_code == 401
    response = client.get("/api/v2/project/1/workflow/abc/", headers=alice[1])
    assert response.status_code == 422
    assert detail(response)[0]["loc"] == ["path", "workflow_id"]


# --- List -------------------------------------------------------------------


def test_list_workflows(client, alice, bob):
    _, headers = alice
    _, bob_headers = bob
    project_a = create_project(client, headers, "a")
    project_b = create_project(client, headers, "b")
    bob_project = create_project(client, bob_headers, "bob's")
    first = create_workflow(client, headers, project_a, "w1")
    second = create_workflow(client, headers, project_a, "w2")
    third = create_workflow(client, headers, project_b, "w3")
    create_workflow(client, bob_headers, bob_project, "w4")
    # a rename must not change the order
    client.patch(url(project_a, first), json={"name": "w1-renamed"}, headers=headers)

    response = client.get(url(project_a), headers=headers)
    assert response.status_code == 200
    assert [item["id"] for item in response.json] == [first, second]
    assert "warning" not in response.json[0]
    assert response.json[0]["project"]["id"] == project_a

    response = client.get("/api/v2/workflow/", headers=headers)
    assert response.status_code == 200
    assert [item["id"] for item in response.json] == [first, second, third]

    response = client.get(url(999), headers=headers)
    assert (response.status_code, detail(response)) == (404, "Project not found")
    response = client.get(url(project_a), headers=bob_headers)
    assert (response.status_code, detail(response)) == (403, f"Not allowed on project {project_a}")


def test_list_has_no_warnings_in_task_list(client, app, alice):
    user_id, headers = alice
    project_id = create_project(client, headers)
    workflow_id = create_workflow(client, headers, project_id)
    task_id = create_task_with_group(app, user_id)
    add_workflow_task(client, headers, project_id, workflow_id, task_id)
    response = client.get(url(project_id), headers=headers)
    assert set(response.json[0]["task_list"][0]) == WFTASK_KEYS


# --- Create -----------------------------------------------------------------


def test_create_workflow(client, alice, bob):
    _, headers = alice
    project_id = create_project(client, headers)
    other_project_id = create_project(client, headers, "other")
    response = client.post(url(project_id), json={"name": "  my workflow "}, headers=headers)
    assert response.status_code == 201
    body = response.json
    assert set(body) == {"id", "name", "project_id", "task_list", "project", "timestamp_created"}
    assert body["name"] == "my workflow"
    assert body["task_list"] == []
    assert body["project"]["name"] == "project"
    assert body["timestamp_created"].endswith("+00:00")

    response = client.post(url(project_id), json={"name": "my workflow"}, headers=headers)
    assert response.status_code == 422
    assert detail(response) == f"Workflow with name='my workflow' and project_id={project_id} already exists."
    response = client.post(url(other_project_id), json={"name": "my workflow"}, headers=headers)
    assert response.status_code == 201

    response = client.post(url(999), json={"name": "x"}, headers=headers)
    assert (response.status_code, detail(response)) == (404, "Project not found")
    response = client.post(url(project_id), json={"name": "x"}, headers=bob[1])
    assert response.status_code == 403


@pytest.mark.parametrize(
    "body, loc, msg",
    [
        ({"name": "  "}, ["body", "name"], "String attribute 'name' cannot be empty"),
        ({"name": None}, ["body", "name"], "String attribute 'name' cannot be None"),
        ({}, ["body", "name"], "field required"),
        ({"name": "x", "extra": 1}, ["body", "extra"], "extra fields not permitted"),
    ],
)
def test_create_workflow_validation(client, alice, body, loc, msg):
    project_id = create_project(client, alice[1])
    response = client.post(url(project_id), json=body, headers=alice[1])
    assert response.status_code == 422
    assert [(item["loc"], item["msg"]) for item in detail(response)] == [(loc, msg)]


# --- Read with warnings -----------------------------------------------------


def test_read_workflow_with_warnings(client, app, alice, bob):
    alice_id, headers = alice
    bob_id, _ = bob
    project_id = create_project(client, headers)
    workflow_id = create_workflow(client, headers, project_id)
    own_task = create_task_with_group(app, alice_id, name="own")
    inactive_group = create_task_group(app, alice_id, pkg_name="old")
    inactive_task = create_task(app, inactive_group, name="inactive")
    shared_group_id = create_user_group(app, "lab", [alice_id, bob_id])
    bob_group = create_task_group(app, bob_id, pkg_name="bobs", user_group_id=shared_group_id)
    bob_task = create_task(app, bob_group, name="bob's")
    for task_id in (own_task, inactive_task, bob_task):
        add_workflow_task(client, headers, project_id, workflow_id, task_id)
    set_task_group_active(app, inactive_group, False)
    remove_from_group(app, shared_group_id, alice_id)  # alice loses access to bob's task group

    response = client.get(url(project_id, workflow_id), headers=headers)
    assert response.status_code == 200
    task_list = response.json["task_list"]
    assert [item["warning"] for item in task_list] == [
        None,
        "Task is not active.",
        "Current user has no access to this task.",
    ]
    assert set(task_list[0]) == WFTASK_KEYS | {"warning"}
    assert set(task_list[0]["task"]) == TASK_KEYS
    assert [item["order"] for item in task_list] == [0, 1, 2]


# --- Patch ------------------------------------------------------------------


def _workflow_with_tasks(client, app, user, count=3):
    user_id, headers = user
    project_id = create_project(client, headers)
    workflow_id = create_workflow(client, headers, project_id)
    task_id = create_task_with_group(app, user_id)
    ids = [add_workflow_task(client, headers, project_id, workflow_id, task_id)["id"] for _ in range(count)]
    return project_id, workflow_id, ids


def test_patch_workflow_name(client, alice):
    _, headers = alice
    project_id = create_project(client, headers)
    workflow_id = create_workflow(client, headers, project_id, "one")
    create_workflow(client, headers, project_id, "two")

    response = client.patch(url(project_id, workflow_id), json={"name": " three "}, headers=headers)
    assert response.status_code == 200
    assert response.json["name"] == "three"
    assert response.json["task_list"] == []

    for taken in ("two", "three"):  # the workflow's own name conflicts too
        response = client.patch(url(project_id, workflow_id), json={"name": taken}, headers=headers)
        assert response.status_code == 422
        assert detail(response) == f"Workflow with name='{taken}' and project_id={project_id} already exists."

    response = client.patch(url(project_id, workflow_id), json={}, headers=headers)
    assert (response.status_code, response.json["name"]) == (200, "three")


def test_patch_workflow_reorder(client, app, alice):
    _, headers = alice
    project_id, workflow_id, (a, b, c) = _workflow_with_tasks(client, app, alice)
    response = client.patch(
        url(project_id, workflow_id),
        json={"name": "renamed", "reordered_workflowtask_ids": [c, a, b]},
        headers=headers,
    )
    assert response.status_code == 200
    assert response.json["name"] == "renamed"
    assert [(item["id"], item["order"]) for item in response.json["task_list"]] == [(c, 0), (a, 1), (b, 2)]
    assert all(item["warning"] is None for item in response.json["task_list"])
    assert get_row(app, WorkflowTaskV2, c)["order"] == 0

    response = client.get(url(project_id, workflow_id), headers=headers)
    assert [item["id"] for item in response.json["task_list"]] == [c, a, b]

    response = client.patch(url(project_id, workflow_id), json={"reordered_workflowtask_ids": [a, b]}, headers=headers)
    assert response.status_code == 422
    assert detail(response) == (
        f"`reordered_workflowtask_ids` must be a permutation of [{c}, {a}, {b}] (given [{a}, {b}])"
    )
    response = client.patch(
        url(project_id, workflow_id), json={"reordered_workflowtask_ids": [a, b, 99]}, headers=headers
    )
    assert response.status_code == 422
    assert "must be a permutation" in detail(response)


@pytest.mark.parametrize(
    "body, loc, msg, kind",
    [
        ({"reordered_workflowtask_ids": [1, -2]}, ["body", "reordered_workflowtask_ids"],
         "Negative `id` in `reordered_workflowtask_ids`", "value_error"),
        ({"reordered_workflowtask_ids": [1, 1]}, ["body", "reordered_workflowtask_ids"],
         "`reordered_workflowtask_ids` has repetitions", "value_error"),
        ({"reordered_workflowtask_ids": None}, ["body", "reordered_workflowtask_ids"],
         "'NoneType' object is not iterable", "type_error"),
        ({"name": None}, ["body", "name"], "String attribute 'name' cannot be None", "value_error"),
        ({"name": ""}, ["body", "name"], "String attribute 'name' cannot be empty", "value_error"),
        ({"project_id": 3}, ["body", "project_id"], "extra fields not permitted", "value_error.extra"),
    ],
)
def test_patch_workflow_validation(client, alice, body, loc, msg, kind):
    _, headers = alice
    project_id = create_project(client, headers)
    workflow_id = create_workflow(client, headers, project_id)
    response = client.patch(url(project_id, workflow_id), json=body, headers=headers)
    assert response.status_code == 422
    assert detail(response) == [{"loc": loc, "msg": msg, "type": kind}]


# --- Delete -----------------------------------------------------------------


def test_delete_workflow(client, app, alice):
    _, headers = alice
    project_id, workflow_id, wftask_ids = _workflow_with_tasks(client, app, alice, count=2)
    done_job = create_job(app, project_id, workflow_id, status="done")
    active_job = create_job(app, project_id, workflow_id, status="submitted")
    other_active = create_job(app, project_id, workflow_id, status="submitted")

    response = client.delete(url(project_id, workflow_id), headers=headers)
    assert response.status_code == 422
    assert detail(response) == (
        f"Cannot delete workflow {workflow_id} because it is linked to active job(s) "
        f"{active_job}, {other_active}."
    )

    for job_id in (active_job, other_active):
        set_job_status(app, job_id, "failed")
    response = client.delete(url(project_id, workflow_id), headers=headers)
    assert response.status_code == 204
    assert response.data == b""
    assert get_row(app, JobV2, done_job)["workflow_id"] is None
    assert all(get_row(app, WorkflowTaskV2, wftask_id) is None for wftask_id in wftask_ids)
    response = client.get(url(project_id, workflow_id), headers=headers)
    assert (response.status_code, detail(response)) == (404, "Workflow not found")
