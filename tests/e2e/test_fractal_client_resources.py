"""The real `fractal` client (2.5.x) on projects, datasets, tasks and workflows.

A real server (`fractalctl set-db` then `fractalctl start`, on a throw-away
PostgreSQL database) and a regular user, created by the default admin over
HTTP: active, verified, not a superuser. Every test runs client commands as
that user, checks what they print and then what the server stores, over HTTP.

Client 2.5 has no `dataset new` / `dataset list`: datasets are created with
`project add-dataset`, and listed here over HTTP.
"""
import json

import pytest
import requests


@pytest.fixture(scope="module")
def fractal_user(server_user):
    """The client logs in as the regular user."""
    return server_user


class Api:
    """The server's state as the regular user sees it, straight over HTTP."""

    def __init__(self, server, credentials):
        self.url = server.url
        self.headers = server.login(credentials)

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.url}{path}", headers=self.headers, timeout=10)

    def ok(self, path: str):
        response = self.get(path)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    def post(self, path: str, body) -> dict:
        response = requests.post(f"{self.url}{path}", json=body, headers=self.headers, timeout=10)
        assert response.status_code == 201, (path, response.text)
        return response.json()


@pytest.fixture
def api(server, server_user):
    return Api(server, server_user)


def batch_id(fractal, *args) -> int:
    return int(fractal.ok("--batch", *args))


def fails(fractal, *args) -> str:
    """stdout + stderr of a command that the server refuses (exit code 1)."""
    code, out, err = fractal(*args)
    assert code == 1, f"fractal {args} did not fail: {out}{err}"
    assert "Traceback" not in err, err
    return out + err


def write_json(path, content) -> str:
    path.write_text(json.dumps(content))
    return str(path)


# --- Projects -----------------------------------------------------------------


def test_project_new_list_show_edit_delete(fractal, api):
    first = batch_id(fractal, "project", "new", "proj-one")
    second = fractal.ok_json("project", "new", "proj-two")
    assert second["name"] == "proj-two" and second["id"] == first + 1
    assert set(second) == {"id", "name", "timestamp_created"}
    assert second["timestamp_created"].endswith("+00:00")

    listed = fractal.ok_json("project", "list")
    mine = [project for project in listed if project["id"] in (first, second["id"])]
    assert [project["name"] for project in mine] == ["proj-one", "proj-two"]
    assert fractal.ok_json("project", "show", first) == api.ok(f"/api/v2/project/{first}/")

    edited = fractal.ok_json("project", "edit", first, "--new-name", "proj-renamed")
    assert (edited["id"], edited["name"]) == (first, "proj-renamed")
    assert api.ok(f"/api/v2/project/{first}/")["name"] == "proj-renamed"
    output = fails(fractal, "project", "edit", second["id"], "--new-name", "proj-renamed")
    assert "Server returned 422" in output
    assert "Project name (proj-renamed) already in use" in output
    assert "Project name (proj-two) already in use" in fails(fractal, "project", "new", "proj-two")

    assert fractal.ok("project", "delete", second["id"]).strip() == ""
    assert api.get(f"/api/v2/project/{second['id']}/").status_code == 404
    assert "Project not found" in fails(fractal, "project", "show", second["id"])
    assert second["id"] not in [project["id"] for project in fractal.ok_json("project", "list")]


def test_project_of_another_user_is_refused(fractal, server):
    admin = server.login()
    response = requests.post(f"{server.url}/api/v2/project/", json={"name": "admin-only"}, headers=admin, timeout=10)
    project_id = response.json()["id"]
    assert f"Not allowed on project {project_id}" in fails(fractal, "project", "show", project_id)
    assert project_id not in [project["id"] for project in fractal.ok_json("project", "list")]


# --- Datasets -----------------------------------------------------------------


def test_dataset_new_show_edit_delete(fractal, api, tmp_path):
    project_id = batch_id(fractal, "project", "new", "datasets-project")
    output = fails(fractal, "project", "add-dataset", project_id, "no-zarr-dir")
    assert "Both 'dataset.zarr_dir' and 'user.settings.project_dir' are null" in output

    first = batch_id(fractal, "project", "add-dataset", project_id, "ds-one", "--zarr-dir", "/data/zarr//one/")
    filters = {"attributes": {"well": "A01"}, "types": {"is_3D": True}}
    second = fractal.ok_json(
        "project", "add-dataset", project_id, "ds-two", "--zarr-dir", "/data/two",
        "--filters", write_json(tmp_path / "filters.json", filters),
    )
    assert second["id"] == first + 1
    assert (second["name"], second["zarr_dir"], second["filters"]) == ("ds-two", "/data/two", filters)
    assert (second["project_id"], second["history"]) == (project_id, [])
    assert second["project"]["name"] == "datasets-project"

    shown = fractal.ok_json("dataset", "show", project_id, first)
    assert (shown["name"], shown["zarr_dir"]) == ("ds-one", "/data/zarr/one")
    assert shown == api.ok(f"/api/v2/project/{project_id}/dataset/{first}/")
    listed = api.ok(f"/api/v2/project/{project_id}/dataset/")
    assert [(dataset["id"], dataset["name"]) for dataset in listed] == [(first, "ds-one"), (second["id"], "ds-two")]

    new_filters = {"attributes": {"plate": "p1.zarr"}, "types": {}}
    edited = fractal.ok_json(
        "dataset", "edit", project_id, first, "--new-name", "ds-renamed",
        "--filters", write_json(tmp_path / "new-filters.json", new_filters),
    )
    assert (edited["name"], edited["filters"]) == ("ds-renamed", new_filters)
    stored = api.ok(f"/api/v2/project/{project_id}/dataset/{first}/")
    assert (stored["name"], stored["filters"], stored["zarr_dir"]) == ("ds-renamed", new_filters, "/data/zarr/one")
    assert "cannot be empty" in fails(fractal, "dataset", "edit", project_id, first, "--new-name", " ")

    assert fractal.ok("dataset", "delete", project_id, first).strip() == ""
    assert api.get(f"/api/v2/project/{project_id}/dataset/{first}/").status_code == 404
    assert [dataset["id"] for dataset in api.ok(f"/api/v2/project/{project_id}/dataset/")] == [second["id"]]
    # `dataset show` prints whatever the server answers, without checking the status.
    assert fractal.ok_json("dataset", "show", project_id, first) == {"detail": "Dataset not found"}
    assert "Dataset not found" in fails(fractal, "dataset", "delete", project_id, first)


# --- Tasks --------------------------------------------------------------------


def test_task_new_list_edit(fractal, fractal_user, api, tmp_path):
    meta = {"cpus_per_task": 2}
    schema = {"title": "Args", "type": "object", "properties": {"x": {"type": "integer"}}}
    non_parallel = batch_id(
        fractal, "task", "new", "client-np-task", "--command-non-parallel", "python3 /tasks/np.py",
        "--version", "1.0", "--meta-non-parallel", write_json(tmp_path / "meta.json", meta),
        "--args-schema-non-parallel", write_json(tmp_path / "schema.json", schema),
        "--args-schema-version", "pydantic_v2",
    )
    parallel = fractal.ok_json(
        "task", "new", "client-p-task", "--command-parallel", "python3 /tasks/p.py", "--private"
    )
    assert parallel["id"] == non_parallel + 1
    assert (parallel["type"], parallel["command_parallel"], parallel["version"]) == (
        "parallel", "python3 /tasks/p.py", None,
    )
    output = fails(fractal, "task", "new", "bad-task", "--command-parallel", "python3 run.py; rm -rf /")
    assert "Server returned 422" in output and "Command must not contain any of this characters" in output
    output = fails(fractal, "task", "new", "client-np-task", "--command-parallel", "x", "--version", "1.0")
    assert f"User '{fractal_user[0]}' already owns a task group with name='client-np-task' and version='1.0'." in output

    listed = fractal.ok_json("task", "list")
    names = [task["name"] for task in listed if task["id"] in (non_parallel, parallel["id"])]
    assert names == ["client-np-task", "client-p-task"]
    shown = next(task for task in listed if task["id"] == non_parallel)
    assert (shown["type"], shown["version"], shown["meta_non_parallel"]) == ("non_parallel", "1.0", meta)
    assert (shown["args_schema_non_parallel"], shown["args_schema_version"]) == (schema, "pydantic_v2")
    assert shown == api.ok(f"/api/v2/task/{non_parallel}/")

    groups = {group["pkg_name"]: group for group in api.ok("/api/v2/task-group/")}
    assert (groups["client-np-task"]["user_group_id"], groups["client-np-task"]["version"]) == (1, "1.0")
    assert groups["client-p-task"]["user_group_id"] is None
    assert [task["id"] for task in groups["client-p-task"]["task_list"]] == [parallel["id"]]

    edited = fractal.ok_json(
        "task", "edit", "--id", non_parallel, "--command-non-parallel", "python3 /tasks/np2.py",
        "--input-types", write_json(tmp_path / "input.json", {"is_3D": False}),
    )
    assert (edited["command_non_parallel"], edited["input_types"]) == ("python3 /tasks/np2.py", {"is_3D": False})
    edited = fractal.ok_json(
        "task", "edit", "--name", "client-np-task", "--version", "1.0",
        "--output-types", write_json(tmp_path / "output.json", {"is_3D": True}),
    )
    assert (edited["id"], edited["output_types"]) == (non_parallel, {"is_3D": True})
    stored = api.ok(f"/api/v2/task/{non_parallel}/")
    assert (stored["command_non_parallel"], stored["input_types"], stored["output_types"]) == (
        "python3 /tasks/np2.py", {"is_3D": False}, {"is_3D": True},
    )
    output = fails(fractal, "task", "edit", "--id", non_parallel, "--command-parallel", "python3 p.py")
    assert "Cannot set an unset `command_parallel`." in output
    assert "TaskV2 99999 not found" in fails(fractal, "task", "edit", "--id", 99999, "--command-parallel", "x")


# --- Workflows ----------------------------------------------------------------


def test_workflow_commands(fractal, api, tmp_path):
    project_id = batch_id(fractal, "project", "new", "workflow-project")
    compound = api.post("/api/v2/task/", {
        "name": "wf-compound", "version": "0.1", "command_non_parallel": "python3 init.py",
        "command_parallel": "python3 run.py", "meta_parallel": {"mem": 1000},
    })
    parallel = api.post("/api/v2/task/", {"name": "wf-parallel", "version": "0.2", "command_parallel": "python3 p.py"})

    workflow_id = batch_id(fractal, "workflow", "new", "wf-one", project_id)
    other = fractal.ok_json("workflow", "new", "wf-two", project_id)
    assert (other["name"], other["project_id"], other["task_list"]) == ("wf-two", project_id, [])
    assert "Workflow with name='wf-one' and project_id=" in fails(fractal, "workflow", "new", "wf-one", project_id)
    listed = fractal.ok_json("workflow", "list", project_id)
    assert [(workflow["id"], workflow["name"]) for workflow in listed] == [(workflow_id, "wf-one"), (other["id"], "wf-two")]

    args = {"threshold": 3}
    first = batch_id(
        fractal, "workflow", "add-task", project_id, workflow_id, "--task-id", compound["id"],
        "--args-non-parallel", write_json(tmp_path / "args.json", args),
        "--meta-parallel", write_json(tmp_path / "meta.json", {"cpus": 4}),
    )
    second = fractal.ok_json(
        "workflow", "add-task", project_id, workflow_id, "--task-name", "wf-parallel",
        "--task-version", "0.2",
        "--input-filters", write_json(tmp_path / "filters.json", {"attributes": {}, "types": {"is_3D": True}}),
    )
    assert (second["task_id"], second["order"], second["task_type"]) == (parallel["id"], 1, "parallel")
    assert second["input_filters"] == {"attributes": {}, "types": {"is_3D": True}}
    third = batch_id(fractal, "workflow", "add-task", project_id, workflow_id, "--task-id", parallel["id"])
    output = fails(fractal, "workflow", "add-task", project_id, workflow_id, "--task-id", parallel["id"], "--order", 0)
    assert "msg: extra fields not permitted" in output and "loc: ['body', 'order']" in output
    output = fails(
        fractal, "workflow", "add-task", project_id, workflow_id, "--task-id", parallel["id"],
        "--args-non-parallel", write_json(tmp_path / "np.json", {"a": 1}),
    )
    assert "Cannot set `WorkflowTaskV2.meta_non_parallel` or `WorkflowTask.args_non_parallel`" in output

    shown = fractal.ok_json("workflow", "show", project_id, workflow_id)
    assert [wftask["id"] for wftask in shown["task_list"]] == [first, second["id"], third]
    assert shown["task_list"][0]["args_non_parallel"] == args
    assert shown["task_list"][0]["meta_parallel"] == {"mem": 1000, "cpus": 4}
    assert shown["task_list"][0]["task"]["name"] == "wf-compound"
    assert shown == api.ok(f"/api/v2/project/{project_id}/workflow/{workflow_id}/")

    new_args = {"threshold": 5, "mode": "fast"}
    edited = fractal.ok_json(
        "workflow", "edit-task", project_id, workflow_id, first,
        "--args-non-parallel", write_json(tmp_path / "new-args.json", new_args),
        "--args-parallel", write_json(tmp_path / "p-args.json", {"level": 0}),
    )
    assert (edited["id"], edited["args_non_parallel"], edited["args_parallel"]) == (first, new_args, {"level": 0})
    output = fails(
        fractal, "workflow", "edit-task", project_id, workflow_id, third,
        "--args-non-parallel", write_json(tmp_path / "bad.json", {"a": 1}),
    )
    assert "Cannot patch `WorkflowTaskV2.args_non_parallel`" in output
    output = fails(
        fractal, "workflow", "edit-task", project_id, workflow_id, first,
        "--args-parallel", write_json(tmp_path / "reserved.json", {"zarr_url": "/x"}),
    )
    assert "forbidden keys" in output

    assert fractal.ok("workflow", "rm-task", project_id, workflow_id, second["id"]).strip() == ""
    stored = api.ok(f"/api/v2/project/{project_id}/workflow/{workflow_id}/")
    assert [(wftask["id"], wftask["order"]) for wftask in stored["task_list"]] == [(first, 0), (third, 1)]
    assert stored["task_list"][0]["args_non_parallel"] == new_args

    renamed = fractal.ok_json("workflow", "edit", project_id, workflow_id, "--new-name", "wf-renamed")
    assert renamed["name"] == "wf-renamed"
    assert api.ok(f"/api/v2/project/{project_id}/workflow/{workflow_id}/")["name"] == "wf-renamed"

    export_file = tmp_path / "exported.json"
    output = fractal.ok("workflow", "export", project_id, workflow_id, "--json-file", export_file)
    assert output.strip() == f"Workflow {workflow_id} exported at {export_file}"
    exported = json.loads(export_file.read_text())
    assert exported == api.ok(f"/api/v2/project/{project_id}/workflow/{workflow_id}/export/")
    assert exported["name"] == "wf-renamed"
    assert [item["task"] for item in exported["task_list"]] == [
        {"pkg_name": "wf-compound", "version": "0.1", "name": "wf-compound"},
        {"pkg_name": "wf-parallel", "version": "0.2", "name": "wf-parallel"},
    ]
    assert '"id"' not in export_file.read_text() and "task_id" not in export_file.read_text()

    ids = fractal.ok(
        "--batch", "workflow", "import", "--project-id", project_id, "--json-file", export_file,
        "--workflow-name", "wf-imported",
    ).split()
    imported_id, imported_tasks = int(ids[0]), [int(value) for value in ids[1:]]
    imported = api.ok(f"/api/v2/project/{project_id}/workflow/{imported_id}/")
    assert imported["name"] == "wf-imported"
    assert [wftask["id"] for wftask in imported["task_list"]] == imported_tasks
    assert [wftask["task_id"] for wftask in imported["task_list"]] == [compound["id"], parallel["id"]]
    assert imported["task_list"][0]["args_non_parallel"] == new_args
    output = fails(fractal, "workflow", "import", "--project-id", project_id, "--json-file", export_file)
    assert "Workflow with name='wf-renamed'" in output and "already exists" in output
    full = fractal.ok_json(
        "workflow", "import", "--project-id", project_id, "--json-file", export_file,
        "--workflow-name", "wf-imported-again",
    )
    assert full["name"] == "wf-imported-again" and len(full["task_list"]) == 2
    missing = {"name": "wf-missing", "task_list": [{"task": {"pkg_name": "nope", "version": None, "name": "x"}}]}
    output = fails(fractal, "workflow", "import", "--project-id", project_id, "--json-file",
                   write_json(tmp_path / "missing.json", missing))
    assert "Could not find a task matching with pkg_name='nope' version=None name='x'." in output

    assert fractal.ok("workflow", "delete", project_id, workflow_id).strip() == ""
    assert api.get(f"/api/v2/project/{project_id}/workflow/{workflow_id}/").status_code == 404
    remaining = [workflow["name"] for workflow in fractal.ok_json("workflow", "list", project_id)]
    assert remaining == ["wf-two", "wf-imported", "wf-imported-again"]
    assert "Workflow not found" in fails(fractal, "workflow", "show", project_id, workflow_id)
