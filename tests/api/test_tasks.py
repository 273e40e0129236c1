"""Tasks: list, read, create, patch, delete (`api-v2.md` section 8)."""
import pytest

from fractal_server.db import db
from fractal_server.db.models import TaskGroupActivityV2, TaskGroupV2, UserGroup

from .factories import all_group_id, create_task, create_task_group, create_user_group, get_row

TASK_KEYS = {
    "id", "name", "type", "source", "version", "command_non_parallel", "command_parallel",
    "meta_parallel", "meta_non_parallel", "args_schema_non_parallel", "args_schema_parallel",
    "args_schema_version", "docs_info", "docs_link", "input_types", "output_types",
    "taskgroupv2_id", "category", "modality", "authors", "tags",
}


@pytest.fixture
def verified_users() -> bool:
    """`alice` and `bob` are verified: creating tasks is for verified users."""
    return True


def post_task(client, headers, query="", **body):
    body.setdefault("name", "my-task")
    if "command_parallel" not in body and "command_non_parallel" not in body:
        body["command_non_parallel"] = "python3 task.py"
    return client.post(f"/api/v2/task/{query}", json=body, headers=headers)


def root_error(response, msg):
    assert response.status_code == 422, response.json
    assert response.json == {"detail": [{"loc": ["body", "__root__"], "msg": msg, "type": "value_error"}]}


def field_error(response, field, msg, type_="value_error"):
    assert response.status_code == 422, response.json
    assert response.json == {"detail": [{"loc": ["body", *field], "msg": msg, "type": type_}]}


# --- POST /api/v2/task/ ---


def test_create_needs_a_verified_user(client, make_user):
    assert post_task(client, {}).status_code == 401
    _, headers = make_user("unverified@example.org")
    response = client.post("/api/v2/task/", json={"invalid": True}, headers=headers)
    assert (response.status_code, response.json) == (403, {"detail": "Forbidden"})


def test_create_task_and_its_task_group(app, client, alice):
    alice_id, headers = alice
    body = {
        "name": "  measure  ",
        "command_non_parallel": "python3 init.py",
        "command_parallel": "python3 run.py",
        "version": "1.2.3",
        "meta_parallel": {" cpus_per_task ": 2},
        "args_schema_parallel": {"title": "x"},
        "args_schema_version": "pydantic_v2",
        "docs_info": "Some docs",
        "docs_link": "https://example.org",
        "input_types": {" is_3D ": False},
        "output_types": {"registered": True},
        "category": " Segmentation ",
        "modality": "HCS",
        "authors": "Jane Doe",
        "tags": [" a ", "b"],
    }
    response = client.post("/api/v2/task/", json=body, headers=headers)
    assert response.status_code == 201, response.json
    task = response.json
    assert set(task) == TASK_KEYS
    assert task["name"] == "measure"
    assert task["type"] == "compound"
    assert task["source"] is None
    assert task["meta_parallel"] == {"cpus_per_task": 2}
    assert task["meta_non_parallel"] == {}
    assert task["args_schema_non_parallel"] is None
    assert task["docs_link"] == "https://example.org"
    assert task["input_types"] == {"is_3D": False}
    assert task["category"] == "Segmentation"
    assert task["tags"] == ["a", "b"]
    group = get_row(app, TaskGroupV2, task["taskgroupv2_id"])
    assert group["origin"] == "other"
    assert (group["pkg_name"], group["version"]) == ("measure", "1.2.3")
    assert (group["user_id"], group["user_group_id"]) == (alice_id, all_group_id(app))
    assert group["active"] is True
    assert group["pinned_package_versions"] == {}
    response = client.get(f"/api/v2/task/{task['id']}/", headers=headers)
    assert (response.status_code, response.json) == (200, task)


@pytest.mark.parametrize(
    "commands, expected",
    [
        ({"command_parallel": "run"}, "parallel"),
        ({"command_non_parallel": "init"}, "non_parallel"),
        ({"command_parallel": "run", "command_non_parallel": "init"}, "compound"),
    ],
)
def test_type_is_derived_from_commands(client, alice, commands, expected):
    response = post_task(client, alice[1], **commands)
    assert response.status_code == 201
    assert response.json["type"] == expected


def test_create_field_rules(client, alice):
    _, headers = alice
    root_error(
        client.post("/api/v2/task/", json={"name": "t"}, headers=headers),
        "Task must have at least one valid command (parallel and/or non_parallel)",
    )
    response = post_task(client, headers, command_parallel="run | tee x")
    assert response.status_code == 422
    [error] = response.json["detail"]
    assert error["loc"] == ["body", "__root__"]
    assert error["msg"].startswith("Command must not contain any of this characters: ")
    assert error["msg"].endswith("\nProvided command: 'run | tee x'.")
    for field in ("command_parallel", "version", "args_schema_version"):
        field_error(post_task(client, headers, **{field: None}), [field], f"String attribute '{field}' cannot be None")
    field_error(post_task(client, headers, name="  "), ["name"], "String attribute 'name' cannot be empty")
    field_error(post_task(client, headers, version=" "), ["version"], "String attribute 'version' cannot be empty")
    field_error(post_task(client, headers, category=""), ["category"], "String attribute 'category' cannot be empty")
    field_error(post_task(client, headers, source="x"), ["source"], "extra fields not permitted", "value_error.extra")
    field_error(post_task(client, headers, tags=["a", " a"]), ["tags"], "`tags` list has repetitions")
    field_error(post_task(client, headers, tags=["a", " "]), ["tags"], "String attribute 'tags[1]' cannot be empty")
    field_error(
        post_task(client, headers, meta_non_parallel={"a": 1, " a": 2}),
        ["meta_non_parallel"],
        "Dictionary contains multiple identical keys",
    )
    field_error(
        post_task(client, headers, docs_link="not-a-url"),
        ["docs_link"],
        "invalid or missing URL scheme",
        "value_error.url.scheme",
    )
    field_error(
        post_task(client, headers, input_types=None),
        ["input_types"],
        "none is not an allowed value",
        "type_error.none.not_allowed",
    )
    response = post_task(client, headers, category=None, modality=None, authors=None, docs_info=None, docs_link=None)
    assert response.status_code == 201


def test_schemas_must_match_the_task_type(client, alice):
    _, headers = alice
    message = (
        "Cannot set `TaskV2.args_schema_non_parallel` or `TaskV2.args_schema_non_parallel` if TaskV2 is parallel"
    )
    for extra in ({"args_schema_non_parallel": {}}, {"meta_non_parallel": {"a": 1}}):
        response = post_task(client, headers, command_parallel="run", **extra)
        assert (response.status_code, response.json) == (422, {"detail": message})
    message = "Cannot set `TaskV2.args_schema_parallel` or `TaskV2.args_schema_parallel` if TaskV2 is non_parallel"
    for extra in ({"args_schema_parallel": {}}, {"meta_parallel": {"a": 1}}):
        response = post_task(client, headers, command_non_parallel="init", **extra)
        assert (response.status_code, response.json) == (422, {"detail": message})


def test_create_user_group_resolution(app, client, alice, bob):
    alice_id, headers = alice
    bob_id, _ = bob
    shared = create_user_group(app, "shared", [alice_id])
    bobs = create_user_group(app, "bobs", [bob_id])

    response = post_task(client, headers, query="?private=true", name="a")
    assert get_row(app, TaskGroupV2, response.json["taskgroupv2_id"])["user_group_id"] is None
    response = post_task(client, headers, query=f"?user_group_id={shared}", name="b")
    assert get_row(app, TaskGroupV2, response.json["taskgroupv2_id"])["user_group_id"] == shared

    response = post_task(client, headers, query=f"?private=true&user_group_id={shared}", name="c")
    assert response.json == {"detail": f"Cannot set both user_group_id={shared} and private=True"}
    response = post_task(client, headers, query="?user_group_id=999", name="c")
    assert (response.status_code, response.json) == (404, {"detail": "UserGroup 999 not found"})
    response = post_task(client, headers, query=f"?user_group_id={bobs}", name="c")
    assert (response.status_code, response.json) == (
        403,
        {"detail": f"User {alice_id} does not belong to UserGroup {bobs}"},
    )
    response = post_task(client, headers, query="?private=maybe", name="c")
    assert response.status_code == 422
    assert response.json["detail"][0]["loc"] == ["query", "private"]

    with app.app_context():
        db.session.get(UserGroup, all_group_id(app)).name = "Everyone"
        db.session.commit()
    response = post_task(client, headers, name="c")
    assert (response.status_code, response.json) == (404, {"detail": "User group 'All' not found."})


def test_create_uniqueness(app, client, alice, bob):
    alice_id, headers = alice
    bob_id, bob_headers = bob
    assert post_task(client, headers, name="t", version="1").status_code == 201
    response = post_task(client, headers, query="?private=true", name="t", version="1")
    assert (response.status_code, response.json) == (
        422,
        {"detail": "User 'alice@example.org' already owns a task group with name='t' and version='1'."},
    )
    assert post_task(client, headers, name="t", version="2").status_code == 201
    assert post_task(client, headers, name="u").status_code == 201
    response = post_task(client, headers, name="u", query="?private=true")
    assert response.json["detail"].endswith("with name='u' and version=None.")

    # Same package in the same user group, by another user.
    response = post_task(client, bob_headers, name="t", version="1")
    assert (response.status_code, response.json) == (
        422,
        {"detail": "UserGroup All already owns a task group with pkg_name='t' and version='1'."},
    )
    assert post_task(client, bob_headers, query="?private=true", name="t", version="1").status_code == 201

    # The note about a collection of the conflicting task group.
    group_id = create_task_group(app, alice_id, pkg_name="pkg", version="0.1", origin="pypi")
    with app.app_context():
        db.session.add(
            TaskGroupActivityV2(
                user_id=alice_id, taskgroupv2_id=group_id, pkg_name="pkg", version="0.1",
                action="collect", status="OK",
            )
        )
        db.session.commit()
    response = post_task(client, headers, query="?private=true", name="pkg", version="0.1")
    assert response.json["detail"] == (
        "User 'alice@example.org' already owns a task group with name='pkg' and version='0.1'.\n"
        f"Note:There exists another task-group collection (activity ID=1) for this task group "
        f"(ID={group_id}), with status 'OK'."
    )


# --- GET /api/v2/task/ and /api/v2/task/{id}/ ---


def test_list_and_read_through_user_groups(app, client, alice, bob, make_user):
    alice_id, alice_headers = alice
    bob_id, bob_headers = bob
    carol_id, carol_headers = make_user("carol@example.org")
    lab_group = create_user_group(app, "lab", [alice_id, bob_id])
    private_task = post_task(client, alice_headers, query="?private=true", name="private").json["id"]
    lab = post_task(client, alice_headers, query=f"?user_group_id={lab_group}", name="lab").json
    lab_task = lab["id"]
    all_task = post_task(client, alice_headers, name="all").json["id"]
    inactive_group = create_task_group(app, bob_id, pkg_name="old", active=False)
    inactive_task = create_task(app, inactive_group, name="old")

    def listed(headers):
        response = client.get("/api/v2/task/", headers=headers)
        assert response.status_code == 200
        return [task["id"] for task in response.json]

    assert listed(alice_headers) == [private_task, lab_task, all_task]
    assert listed(bob_headers) == [lab_task, all_task, inactive_task]
    assert listed(carol_headers) == [all_task]

    assert client.get(f"/api/v2/task/{lab_task}/", headers=bob_headers).status_code == 200
    response = client.get(f"/api/v2/task/{lab_task}/", headers=carol_headers)
    assert (response.status_code, response.json) == (
        403,
        {"detail": [f"Current user has no read access to TaskGroupV2 {lab['taskgroupv2_id']}."]},
    )
    response = client.get(f"/api/v2/task/{private_task}/", headers=bob_headers)
    assert response.status_code == 403
    response = client.get("/api/v2/task/999/", headers=bob_headers)
    assert (response.status_code, response.json) == (404, {"detail": "TaskV2 999 not found"})
    assert client.get("/api/v2/task/").status_code == 401
    assert client.get("/api/v2/task/1/").status_code == 401


def test_list_filters_and_args_schema(client, alice):
    _, headers = alice
    first = post_task(
        client, headers, name="a", category="Segmentation", modality="HCS", authors="Jane Doe, John Roe",
        args_schema_non_parallel={"title": "A"},
    ).json["id"]
    second = post_task(client, headers, name="b", category="Registration", modality="hcs", authors="Max 100%").json["id"]

    def listed(query):
        response = client.get(f"/api/v2/task/{query}", headers=headers)
        assert response.status_code == 200
        return [task["id"] for task in response.json]

    assert listed("?category=segmentation") == [first]
    assert listed("?category=Segment") == []
    assert listed("?modality=HCS") == [first, second]
    assert listed("?author=john") == [first]
    assert listed("?author=100%25") == [second]
    assert listed("?author=%25") == [second]
    assert listed("?category=registration&modality=hcs&author=max") == [second]
    tasks = client.get("/api/v2/task/?args_schema=false", headers=headers).json
    assert tasks[0]["args_schema_non_parallel"] is None
    tasks = client.get("/api/v2/task/", headers=headers).json
    assert tasks[0]["args_schema_non_parallel"] == {"title": "A"}


# --- PATCH /api/v2/task/{id}/ ---


def test_patch_task(client, alice):
    _, headers = alice
    task = post_task(client, headers, command_non_parallel="init", command_parallel="run", category="x", tags=["a"]).json
    body = {
        "command_parallel": " run2 | tee ",
        "input_types": {" a ": True},
        "output_types": {},
        "category": None,
        "modality": " HCS ",
        "authors": "Me",
        "tags": [" b ", "c"],
    }
    response = client.patch(f"/api/v2/task/{task['id']}/", json=body, headers=headers)
    assert response.status_code == 200, response.json
    patched = response.json
    assert patched["command_parallel"] == "run2 | tee"
    assert patched["command_non_parallel"] == "init"
    assert patched["input_types"] == {"a": True}
    assert patched["category"] is None
    assert patched["modality"] == "HCS"
    assert patched["tags"] == ["b", "c"]
    assert patched["type"] == "compound"
    response = client.patch(f"/api/v2/task/{task['id']}/", json={}, headers=headers)
    assert response.json == patched


def test_patch_task_errors(app, client, alice, bob, make_user):
    alice_id, headers = alice
    bob_id, bob_headers = bob
    lab = create_user_group(app, "lab", [alice_id, bob_id])
    parallel = post_task(client, headers, query=f"?user_group_id={lab}", name="p", command_parallel="run").json
    non_parallel = post_task(client, headers, name="n", command_non_parallel="init").json

    assert client.patch(f"/api/v2/task/{parallel['id']}/", json={}).status_code == 401
    _, unverified = make_user("unverified@example.org")
    response = client.patch(f"/api/v2/task/{parallel['id']}/", json={"name": 1}, headers=unverified)
    assert (response.status_code, response.json) == (403, {"detail": "Forbidden"})
    response = client.patch("/api/v2/task/999/", json={}, headers=headers)
    assert (response.status_code, response.json) == (404, {"detail": "TaskV2 999 not found"})
    response = client.patch(f"/api/v2/task/{parallel['id']}/", json={}, headers=bob_headers)
    assert (response.status_code, response.json) == (
        403,
        {"detail": [f"Current user has no full access to TaskGroupV2 {parallel['taskgroupv2_id']}."]},
    )

    url = f"/api/v2/task/{parallel['id']}/"
    for key in ("name", "version", "meta_parallel"):
        field_error(client.patch(url, json={key: "x"}, headers=headers), [key], "extra fields not permitted", "value_error.extra")
    field_error(
        client.patch(url, json={"command_parallel": None}, headers=headers),
        ["command_parallel"],
        "String attribute 'command_parallel' cannot be None",
    )
    field_error(client.patch(url, json={"input_types": None}, headers=headers), ["input_types"], "")
    field_error(
        client.patch(url, json={"tags": None}, headers=headers),
        ["tags"],
        "none is not an allowed value",
        "type_error.none.not_allowed",
    )
    response = client.patch(url, json={"command_non_parallel": "init"}, headers=headers)
    assert (response.status_code, response.json) == (422, {"detail": "Cannot set an unset `command_non_parallel`."})
    response = client.patch(
        f"/api/v2/task/{non_parallel['id']}/", json={"command_parallel": "run"}, headers=headers
    )
    assert (response.status_code, response.json) == (422, {"detail": "Cannot set an unset `command_parallel`."})


# --- DELETE /api/v2/task/{id}/ ---


def test_delete_is_never_allowed(client, alice):
    _, headers = alice
    task_id = post_task(client, headers).json["id"]
    assert client.delete(f"/api/v2/task/{task_id}/").status_code == 401
    for url in (f"/api/v2/task/{task_id}/", "/api/v2/task/999/"):
        response = client.delete(url, headers=headers)
        assert (response.status_code, response.json) == (
            405,
            {"detail": "Cannot delete single tasks, please operate directly on task groups."},
        )
