"""Workflow tasks: insert, read, patch, delete (`api-v2.md` section 7.1)."""
import pytest

from fractal_server.db.models import WorkflowTaskV2

from .factories import (
    add_workflow_task,
    all_group_id,
    create_project,
    create_task,
    create_task_group,
    create_user_group,
    create_workflow,
    get_row,
)

EMPTY_FILTERS = {"attributes": {}, "types": {}}
PARALLEL_ERROR = (
    "Cannot set `WorkflowTaskV2.meta_non_parallel` or `WorkflowTask.args_non_parallel` "
    "if the associated Task is `parallel`."
)
NON_PARALLEL_ERROR = (
    "Cannot set `WorkflowTaskV2.meta_parallel` or `WorkflowTask.args_parallel` "
    "if the associated Task is `non_parallel`."
)
PATCH_PARALLEL_ERROR = (
    "Cannot patch `WorkflowTaskV2.args_non_parallel` or `WorkflowTask.meta_non_parallel` "
    "if the associated Task is parallel."
)
PATCH_NON_PARALLEL_ERROR = (
    "Cannot patch `WorkflowTaskV2.args_parallel` or `WorkflowTask.meta_parallel` "
    "if the associated Task is non parallel."
)


@pytest.fixture
def setup(client, app, alice):
    """Alice's project and workflow, and one private task group of hers with three tasks."""
    user_id, headers = alice
    project_id = create_project(client, headers)
    workflow_id = create_workflow(client, headers, project_id)
    group_id = create_task_group(app, user_id)
    tasks = {
        kind: create_task(
            app, group_id, name=kind, type=kind,
            meta_parallel={"cpus": 1, "mem": 100}, meta_non_parallel={"cpus": 2},
        )
        for kind in ("parallel", "non_parallel", "compound")
    }
    tasks["plain"] = create_task(app, group_id, name="plain", type="compound")
    base = f"/api/v2/project/{project_id}/workflow/{workflow_id}/wftask/"
    return {"project_id": project_id, "workflow_id": workflow_id, "tasks": tasks, "base": base,
            "headers": headers, "user_id": user_id, "group_id": group_id}


def insert(client, setup, task_id, body=None, headers=None):
    return client.post(f"{setup['base']}?task_id={task_id}", json=body or {}, headers=headers or setup["headers"])


def detail(response):
    return response.json["detail"]


# --- Insert -----------------------------------------------------------------


def test_insert_appends_and_merges_meta(client, app, setup):
    tasks = setup["tasks"]
    response = insert(client, setup, tasks["compound"], {
        "meta_parallel": {"mem": 500, "extra": True},
        "args_parallel": {"x": 1},
        "args_non_parallel": {"y": 2},
        "input_filters": {"attributes": {"well": "A01"}, "types": {"3D": False}},
    })
    assert response.status_code == 201
    first = response.json
    assert first["order"] == 0
    assert first["task_type"] == "compound"
    assert first["task_id"] == tasks["compound"]
    assert first["task"]["name"] == "compound"
    assert first["meta_parallel"] == {"cpus": 1, "mem": 500, "extra": True}
    assert first["meta_non_parallel"] == {"cpus": 2}
    assert first["args_parallel"] == {"x": 1}
    assert first["args_non_parallel"] == {"y": 2}
    assert first["input_filters"] == {"attributes": {"well": "A01"}, "types": {"3D": False}}
    assert "warning" not in first

    second = insert(client, setup, tasks["plain"]).json
    assert second["order"] == 1
    # empty merged metas are stored as null; missing args stay null; default filters
    assert (second["meta_parallel"], second["meta_non_parallel"]) == (None, None)
    assert (second["args_parallel"], second["args_non_parallel"]) == (None, None)
    assert second["input_filters"] == EMPTY_FILTERS
    assert get_row(app, WorkflowTaskV2, second["id"])["meta_parallel"] is None

    third = insert(client, setup, tasks["parallel"], {"meta_parallel": {"cpus": 4}}).json
    assert (third["order"], third["task_type"], third["meta_parallel"]) == (2, "parallel", {"cpus": 4, "mem": 100})
    # a given meta that is empty still merges with the defaults
    fourth = insert(client, setup, tasks["non_parallel"], {"meta_non_parallel": {}}).json
    assert fourth["meta_non_parallel"] == {"cpus": 2}

    workflow = client.get(
        f"/api/v2/project/{setup['project_id']}/workflow/{setup['workflow_id']}/", headers=setup["headers"]
    ).json
    assert [item["id"] for item in workflow["task_list"]] == [first["id"], second["id"], third["id"], fourth["id"]]


@pytest.mark.parametrize(
    "kind, body, message",
    [
        ("parallel", {"meta_non_parallel": {"a": 1}}, PARALLEL_ERROR),
        ("parallel", {"args_non_parallel": {"a": 1}}, PARALLEL_ERROR),
        ("non_parallel", {"meta_parallel": {"a": 1}}, NON_PARALLEL_ERROR),
        ("non_parallel", {"args_parallel": {"a": 1}}, NON_PARALLEL_ERROR),
    ],
)
def test_insert_incompatible_args(client, setup, kind, body, message):
    response = insert(client, setup, setup["tasks"][kind], body)
    assert (response.status_code, detail(response)) == (422, message)


def test_insert_compatible_args(client, setup):
    tasks = setup["tasks"]
    assert insert(client, setup, tasks["parallel"], {"args_parallel": {"a": 1}, "args_non_parallel": None}).status_code == 201
    assert insert(client, setup, tasks["non_parallel"], {"meta_non_parallel": {"a": 1}}).status_code == 201


def test_insert_task_access(client, app, setup, bob):
    bob_id, _ = bob
    private_group = create_task_group(app, bob_id, pkg_name="bobs")
    private = create_task(app, private_group, name="private")
    shared_all = create_task(
        app, create_task_group(app, bob_id, pkg_name="shared", user_group_id=all_group_id(app)), name="s"
    )
    lab = create_user_group(app, "lab", [bob_id])
    other_group_group = create_task_group(app, bob_id, pkg_name="lab", user_group_id=lab)
    other_group = create_task(app, other_group_group, name="lab-task")
    inactive_group = create_task_group(app, setup["user_id"], pkg_name="old", active=False)
    inactive = create_task(app, inactive_group, name="old-task")

    response = insert(client, setup, 999)
    assert (response.status_code, detail(response)) == (404, "TaskV2 999 not found")
    response = insert(client, setup, private)
    assert (response.status_code, detail(response)) == (
        403, [f"Current user has no read access to TaskGroupV2 {private_group}."]
    )
    response = insert(client, setup, other_group)
    assert (response.status_code, detail(response)) == (
        403, [f"Current user has no read access to TaskGroupV2 {other_group_group}."]
    )
    response = insert(client, setup, inactive)
    assert (response.status_code, detail(response)) == (422, f"Error: task {inactive} (old-task) is not active.")
    assert insert(client, setup, shared_all).status_code == 201


def test_insert_ownership(client, setup, bob):
    task_id = setup["tasks"]["plain"]
    project_id, workflow_id = setup["project_id"], setup["workflow_id"]
    other_workflow_project = create_project(client, setup["headers"], "other")
    cases = [
        (f"/api/v2/project/999/workflow/{workflow_id}/wftask/", setup["headers"], 404, "Project not found"),
        (setup["base"], bob[1], 403, f"Not allowed on project {project_id}"),
        (f"/api/v2/project/{project_id}/workflow/999/wftask/", setup["headers"], 404, "Workflow not found"),
        (f"/api/v2/project/{other_workflow_project}/workflow/{workflow_id}/wftask/", setup["headers"], 422,
         f"Invalid project_id={other_workflow_project} for workflow_id={workflow_id}."),
    ]
    for base, headers, status, message in cases:
        response = client.post(f"{base}?task_id={task_id}", json={}, headers=headers)
        assert (response.status_code, detail(response)) == (status, message)


@pytest.mark.parametrize(
    "body, loc, msg",
    [
        ({"order": 0}, ["body", "order"], "extra fields not permitted"),
        ({"input_filters": None}, ["body", "input_filters"], "none is not an allowed value"),
        ({"args_parallel": {"zarr_url": "/x", "a": 1}}, ["body", "args_parallel"],
         "`args` contains the following forbidden keys: {'zarr_url'}"),
        ({"args_non_parallel": {"zarr_dir": "/x", "init_args": {}}}, ["body", "args_non_parallel"],
         "`args` contains the following forbidden keys: {'init_args', 'zarr_dir'}"),
        ({"meta_parallel": {"a": 1, " a": 2}}, ["body", "meta_parallel"], "Dictionary contains multiple identical keys"),
        ({"input_filters": {"attributes": {"a": [1]}}}, ["body", "input_filters", "attributes"],
         "Filters.attributes[a] must be a scalar (int, float, str, bool, or None). Given [1] (<class 'list'>)"),
    ],
)
def test_insert_validation(client, setup, body, loc, msg):
    response = insert(client, setup, setup["tasks"]["compound"], body)
    assert response.status_code == 422
    assert [(item["loc"], item["msg"]) for item in detail(response)] == [(loc, msg)]


def test_insert_query_and_body_required(client, setup):
    response = client.post(setup["base"], json={}, headers=setup["headers"])
    assert response.status_code == 422
    assert detail(response) == [{"loc": ["query", "task_id"], "msg": "field required", "type": "value_error.missing"}]
    response = client.post(f"{setup['base']}?task_id=x", json={}, headers=setup["headers"])
    assert detail(response)[0]["loc"] == ["query", "task_id"]
    response = client.post(f"{setup['base']}?task_id=1", headers=setup["headers"])
    assert detail(response) == [{"loc": ["body"], "msg": "field required", "type": "value_error.missing"}]
    assert client.post(f"{setup['base']}?task_id=1", json={}).status_code == 401


# --- Read -------------------------------------------------------------------


def test_read_workflow_task_and_access(client, setup, bob):
    created = add_workflow_task(client, setup["headers"], setup["project_id"], setup["workflow_id"], setup["tasks"]["plain"])
    project_id, workflow_id, wftask_id = setup["project_id"], setup["workflow_id"], created["id"]
    response = client.get(f"{setup['base']}{wftask_id}/", headers=setup["headers"])
    assert (response.status_code, response.json) == (200, created)

    other_workflow = create_workflow(client, setup["headers"], project_id, "other")
    other_project = create_project(client, setup["headers"], "other")
    cases = [
        (999, workflow_id, wftask_id, setup["headers"], 404, "Project not found"),
        (project_id, workflow_id, wftask_id, bob[1], 403, f"Not allowed on project {project_id}"),
        (project_id, 999, wftask_id, setup["headers"], 404, "Workflow not found"),
        (other_project, workflow_id, wftask_id, setup["headers"], 422,
         f"Invalid project_id={other_project} for workflow_id={workflow_id}."),
        (project_id, workflow_id, 999, setup["headers"], 404, "WorkflowTask not found"),
        (project_id, other_workflow, wftask_id, setup["headers"], 422,
         f"Invalid workflow_id={other_workflow} for workflow_task_id={wftask_id}"),
    ]
    for p, w, t, headers, status, message in cases:
        path = f"/api/v2/project/{p}/workflow/{w}/wftask/{t}/"
        for method, body in (("get", None), ("patch", {}), ("delete", None)):
            response = getattr(client, method)(path, json=body, headers=headers)
            assert (response.status_code, detail(response)) == (status, message), (method, path)


# --- Patch ------------------------------------------------------------------


def test_patch_replaces_values(client, app, setup):
    created = insert(client, setup, setup["tasks"]["compound"], {"args_parallel": {"a": 1}}).json
    path = f"{setup['base']}{created['id']}/"
    response = client.patch(path, json={
        "meta_parallel": {"new": 1},
        "args_non_parallel": {"b": 2},
        "input_filters": {"types": {"is_3D": True}},
    }, headers=setup["headers"])
    assert response.status_code == 200
    body = response.json
    assert body["meta_parallel"] == {"new": 1}  # not merged with the task's defaults
    assert body["meta_non_parallel"] == {"cpus": 2}  # untouched
    assert body["args_parallel"] == {"a": 1}  # untouched
    assert body["args_non_parallel"] == {"b": 2}
    assert body["input_filters"] == {"attributes": {}, "types": {"is_3D": True}}

    response = client.patch(path, json={"args_parallel": {}, "meta_non_parallel": {}, "meta_parallel": None},
                            headers=setup["headers"])
    body = response.json
    assert (body["args_parallel"], body["meta_non_parallel"], body["meta_parallel"]) == (None, {}, None)
    assert get_row(app, WorkflowTaskV2, created["id"])["args_parallel"] is None

    response = client.patch(path, json={}, headers=setup["headers"])
    assert (response.status_code, response.json) == (200, body)


@pytest.mark.parametrize(
    "kind, body, message",
    [
        ("parallel", {"args_non_parallel": {"a": 1}}, PATCH_PARALLEL_ERROR),
        ("parallel", {"meta_non_parallel": {"a": 1}}, PATCH_PARALLEL_ERROR),
        ("non_parallel", {"args_parallel": {"a": 1}}, PATCH_NON_PARALLEL_ERROR),
        ("non_parallel", {"meta_parallel": {"a": 1}}, PATCH_NON_PARALLEL_ERROR),
    ],
)
def test_patch_incompatible(client, setup, kind, body, message):
    created = insert(client, setup, setup["tasks"][kind]).json
    response = client.patch(f"{setup['base']}{created['id']}/", json=body, headers=setup["headers"])
    assert (response.status_code, detail(response)) == (422, message)
    # null is always accepted
    response = client.patch(f"{setup['base']}{created['id']}/", json={key: None for key in body},
                            headers=setup["headers"])
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body, loc, msg",
    [
        ({"task_id": 1}, ["body", "task_id"], "extra fields not permitted"),
        ({"order": 1}, ["body", "order"], "extra fields not permitted"),
        ({"input_filters": None}, ["body", "input_filters"], "none is not an allowed value"),
        ({"args_parallel": {"zarr_urls": []}}, ["body", "args_parallel"],
         "`args` contains the following forbidden keys: {'zarr_urls'}"),
        ({"meta_non_parallel": {" ": 1}}, ["body", "meta_non_parallel"], "Dictionary keys cannot be empty"),
    ],
)
def test_patch_validation(client, setup, body, loc, msg):
    created = insert(client, setup, setup["tasks"]["compound"]).json
    response = client.patch(f"{setup['base']}{created['id']}/", json=body, headers=setup["headers"])
    assert response.status_code == 422
    assert [(item["loc"], item["msg"]) for item in detail(response)] == [(loc, msg)]


# --- Delete -----------------------------------------------------------------


def test_delete_renumbers(client, app, setup):
    ids = [insert(client, setup, setup["tasks"]["plain"]).json["id"] for _ in range(4)]
    response = client.delete(f"{setup['base']}{ids[1]}/", headers=setup["headers"])
    assert (response.status_code, response.data) == (204, b"")
    assert get_row(app, WorkflowTaskV2, ids[1]) is None
    workflow = client.get(
        f"/api/v2/project/{setup['project_id']}/workflow/{setup['workflow_id']}/", headers=setup["headers"]
    ).json
    assert [(item["id"], item["order"]) for item in workflow["task_list"]] == [(ids[0], 0), (ids[2], 1), (ids[3], 2)]
    new = insert(client, setup, setup["tasks"]["plain"]).json
    assert new["order"] == 3
