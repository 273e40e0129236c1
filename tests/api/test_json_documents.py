"""JSON documents come back exactly as they were written: keys in the order given.

fractal-web draws a task's argument form field by field in the order of the
schema's `properties`, so every document a user or a task author writes
(task schemas and meta, workflow-task arguments, meta and filters, dataset
filters, exported and imported workflows, job dumps, user settings, pinned
package versions) must keep its key order through the database. Each
document below has keys out of alphabetical (and `jsonb`) order, at every
level; the test runs on PostgreSQL and on the embedded SQLite database.
"""
import json
import uuid

import pytest
from flask_migrate import downgrade, upgrade

from fractal_server.auth.accounts import create_user
from fractal_server.auth.tokens import issue_token
from fractal_server.db import db

DOCUMENT = {"z": 1, "a": {"zz": True, "b": [{"y": 1, "x": {"q": None, "c": "text"}}]}, "m": "text", "aa": [3, 1, 2]}
SCHEMA = {
    "title": "Args",
    "type": "object",
    "properties": {"zarr_url": {"type": "string"}, "z_level": {"type": "integer"}, "axis": {"type": "string"}},
    "required": ["zarr_url"],
    "additionalProperties": False,
}
FILTERS = {"attributes": {"z": 1, "well": "B03", "a": "x", "m": True}, "types": {"z": True, "is_3D": False, "a": True}}
TYPES = {"z": True, "is_3D": False, "a": True}
PINS = {"zarr": "2.18.0", "numpy": "1.26.4", "anndata": "0.10.0"}


def same(got, expected) -> bool:
    """Equal, and with every object's keys in the same order."""
    return json.dumps(got) == json.dumps(expected)


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request):
    """`(app, client)` on an empty PostgreSQL database, or on the shared SQLite one."""
    if request.param == "postgresql":
        request.getfixturevalue("client")
        app = request.getfixturevalue("app")
    else:
        app = request.getfixturevalue("sqlite_app")
    return app, app.test_client()


def unique(name: str) -> str:
    """Names are unique per user group, and the SQLite database is shared by the whole session."""
    return f"{name}-{uuid.uuid4().hex[:12]}"


def headers_of(app, **flags) -> dict:
    with app.app_context():
        user = create_user(f"{unique('user')}@example.org", "password", is_verified=True, **flags)
        return {"Authorization": f"Bearer {issue_token(user, 3600)}"}


def ok(response, status=200):
    assert response.status_code == status, response.json
    return response.json


def test_task_documents(database):
    app, client = database
    user = headers_of(app)
    body = {
        "name": unique("task"),
        "command_non_parallel": "python3 init.py",
        "command_parallel": "python3 run.py",
        "meta_non_parallel": DOCUMENT,
        "meta_parallel": DOCUMENT,
        "args_schema_non_parallel": SCHEMA,
        "args_schema_parallel": SCHEMA,
        "input_types": TYPES,
        "output_types": TYPES,
        "tags": ["z", "a", "m"],
    }
    task = ok(client.post("/api/v2/task/", json=body, headers=user), 201)
    for read in (task, ok(client.get(f"/api/v2/task/{task['id']}/", headers=user))):
        assert same({key: read[key] for key in body if key != "name"}, {k: v for k, v in body.items() if k != "name"})
    task_group = ok(client.get(f"/api/v2/task-group/{task['taskgroupv2_id']}/", headers=user))
    assert same(task_group["task_list"][0]["args_schema_parallel"], SCHEMA)
    patched = ok(client.patch(f"/api/v2/task/{task['id']}/", json={"input_types": {"m": True, "b": False}}, headers=user))
    assert same(patched["input_types"], {"m": True, "b": False})


def test_workflow_task_documents_export_and_import(database):
    app, client = database
    user = headers_of(app)
    compound = {"name": unique("t"), "command_non_parallel": "python3 init.py", "command_parallel": "python3 run.py"}
    task = ok(client.post("/api/v2/task/", json=compound, headers=user), 201)
    project = ok(client.post("/api/v2/project/", json={"name": "p"}, headers=user), 201)["id"]
    workflow = ok(client.post(f"/api/v2/project/{project}/workflow/", json={"name": "w"}, headers=user), 201)["id"]
    documents = {
        "meta_non_parallel": DOCUMENT,
        "meta_parallel": DOCUMENT,
        "args_non_parallel": DOCUMENT,
        "args_parallel": DOCUMENT,
        "input_filters": FILTERS,
    }
    base = f"/api/v2/project/{project}/workflow/{workflow}"
    created = ok(client.post(f"{base}/wftask/?task_id={task['id']}", json=documents, headers=user), 201)
    read = ok(client.get(f"{base}/wftask/{created['id']}/", headers=user))
    for wftask in (created, read, ok(client.get(f"{base}/", headers=user))["task_list"][0]):
        assert same({key: wftask[key] for key in documents}, documents)
    other = {"m": {"z": 0, "b": 1}, "c": 2}
    patched = ok(client.patch(f"{base}/wftask/{created['id']}/", json={"args_parallel": other}, headers=user))
    assert same(patched["args_parallel"], other)

    exported = ok(client.get(f"{base}/export/", headers=user))
    expected = {**documents, "args_parallel": other}
    assert same({key: exported["task_list"][0][key] for key in documents}, expected)
    exported["name"] = "imported"
    imported = ok(client.post(f"/api/v2/project/{project}/workflow/import/", json=exported, headers=user), 201)
    assert same({key: imported["task_list"][0][key] for key in documents}, expected)
    again = ok(client.get(f"/api/v2/project/{project}/workflow/{imported['id']}/export/", headers=user))
    assert same(again["task_list"], exported["task_list"])


def test_dataset_filters_and_job_dump(database):
    app, client = database
    user = headers_of(app)
    project = ok(client.post("/api/v2/project/", json={"name": "p"}, headers=user), 201)["id"]
    datasets = f"/api/v2/project/{project}/dataset"
    dataset = ok(client.post(f"{datasets}/", json={"name": "d", "zarr_dir": "/z", "filters": FILTERS}, headers=user), 201)
    assert same(dataset["filters"], FILTERS)
    assert same(ok(client.get(f"{datasets}/{dataset['id']}/", headers=user))["filters"], FILTERS)
    new_filters = {"attributes": {"y": 0, "b": 1}, "types": {"y": False, "b": True}}
    patched = ok(client.patch(f"{datasets}/{dataset['id']}/", json={"filters": new_filters}, headers=user))
    assert same(patched["filters"], new_filters)
    imported = ok(
        client.post(f"{datasets}/import/", json={"name": "i", "zarr_dir": "/i", "filters": FILTERS}, headers=user), 201
    )
    assert same(imported["filters"], FILTERS)
    assert same(ok(client.get(f"{datasets}/{imported['id']}/export/", headers=user))["filters"], FILTERS)

    task = ok(client.post("/api/v2/task/", json={"name": unique("t"), "command_parallel": "python3 run.py"}, headers=user), 201)
    workflow = ok(client.post(f"/api/v2/project/{project}/workflow/", json={"name": "w"}, headers=user), 201)["id"]
    ok(client.post(f"/api/v2/project/{project}/workflow/{workflow}/wftask/?task_id={task['id']}", json={}, headers=user), 201)
    job = ok(
        client.post(
            f"/api/v2/project/{project}/job/submit/?workflow_id={workflow}&dataset_id={imported['id']}",
            json={}, headers=user,
        ),
        202,
    )
    assert same(ok(client.get(f"/api/v2/project/{project}/job/{job['id']}/", headers=user))["dataset_dump"]["filters"], FILTERS)


def test_user_settings_and_group_documents(database):
    app, client = database
    user = headers_of(app)
    admin = headers_of(app, is_superuser=True)
    accounts = ["z-account", "a-account", "m-account"]
    settings = ok(client.patch("/auth/current-user/settings/", json={"slurm_accounts": accounts}, headers=user))
    assert settings["slurm_accounts"] == accounts
    assert ok(client.get("/auth/current-user/settings/", headers=user))["slurm_accounts"] == accounts
    paths = ["/z", "/a", "/m"]
    group = ok(client.post("/auth/group/", json={"name": unique("group"), "viewer_paths": paths}, headers=admin), 201)
    assert ok(client.get(f"/auth/group/{group['id']}/", headers=admin))["viewer_paths"] == paths


def test_pinned_package_versions(database, tmp_path, monkeypatch):
    """Stored by the pip collection endpoint (its background work is not needed here)."""
    monkeypatch.setattr(
        "fractal_server.task_collection.pip_collector.start_in_background", lambda procedure, activity_id: None
    )
    app, client = database
    user = headers_of(app)
    wheel = tmp_path / f"pkg_{uuid.uuid4().hex[:8]}-1.0.0-py3-none-any.whl"
    wheel.write_bytes(b"not read")
    body = {"package": str(wheel), "pinned_package_versions": PINS}
    activity = ok(client.post("/api/v2/task/collect/pip/", json=body, headers=user), 202)
    task_group = ok(client.get(f"/api/v2/task-group/{activity['taskgroupv2_id']}/", headers=user))
    assert same(task_group["pinned_package_versions"], PINS)


JSON_MIGRATION_PARENT = "d0c6af8b1960-1"
"""The revision before the migration that turns documents into `json` (alembic's relative form)."""


def column_types(app) -> dict[str, str]:
    with app.app_context():
        rows = db.session.execute(db.text(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE data_type IN ('json', 'jsonb') AND table_schema = 'public'"
        ))
        return dict(rows.all())


def test_the_migration_converts_existing_databases_both_ways(app, client):
    """On PostgreSQL: `jsonb` before, `json` after, except image attributes and types; rows survive."""
    user = headers_of(app)
    body = {"name": "t", "command_parallel": "python3 run.py", "meta_parallel": DOCUMENT}
    task = ok(client.post("/api/v2/task/", json=body, headers=user), 201)
    directory = app.extensions["migrate"].directory
    queried = {"imagev2.attributes": "jsonb", "imagev2.types": "jsonb"}
    after = column_types(app)
    assert {column: kind for column, kind in after.items() if kind == "jsonb"} == queried
    assert after["taskv2.meta_parallel"] == after["taskgroupv2.pinned_package_versions"] == "json"
    with app.app_context():
        downgrade(directory=directory, revision=JSON_MIGRATION_PARENT)
    before = column_types(app)
    converted = {column for column in after if before[column] != after[column]}
    assert {(before[column], after[column]) for column in converted} == {("jsonb", "json")}
    assert len(converted) == 19 and {"taskv2.args_schema_parallel", "datasetv2.filters"} <= converted
    assert ok(client.get(f"/api/v2/task/{task['id']}/", headers=user))["meta_parallel"] == DOCUMENT  # equal, not same
    with app.app_context():
        upgrade(directory=directory)
    assert column_types(app) == after
    assert ok(client.get(f"/api/v2/task/{task['id']}/", headers=user))["meta_parallel"] == DOCUMENT
