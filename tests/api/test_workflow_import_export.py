"""Workflow export and import, with the task-matching rules (`api-v2.md` section 7)."""
import pytest

from .factories import (
    add_workflow_task,
    all_group_id,
    create_project,
    create_task,
    create_task_group,
    create_user_group,
    create_workflow,
)

IDS = {"id", "project_id", "task_id", "workflow_id"}


def import_url(project_id):
    return f"/api/v2/project/{project_id}/workflow/import/"


def new_form(pkg_name="pkg", name="task", version=None):
    return {"task": {"pkg_name": pkg_name, "version": version, "name": name}}


def do_import(client, headers, project_id, *items, name="imported"):
    return client.post(import_url(project_id), json={"name": name, "task_list": list(items)}, headers=headers)


def imported_task_ids(response):
    assert response.status_code == 201, response.json
    return [item["task_id"] for item in response.json["task_list"]]


def no_match(response, rendered):
    assert response.status_code == 422
    assert response.json["detail"] == f"Could not find a task matching with {rendered}."


def all_keys(value):
    if isinstance(value, dict):
        return set(value) | set().union(*(all_keys(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(all_keys(item) for item in value))
    return set()


# --- Export -----------------------------------------------------------------


def test_export_and_round_trip(client, app, alice, bob):
    user_id, headers = alice
    project_id = create_project(client, headers)
    workflow_id = create_workflow(client, headers, project_id, "my workflow")
    group_id = create_task_group(app, user_id, pkg_name="fractal-tasks-core", version="1.3.0")
    first = create_task(app, group_id, name="create", type="non_parallel", meta_non_parallel={"cpus": 2})
    second = create_task(app, group_id, name="measure", type="parallel")
    add_workflow_task(client, headers, project_id, workflow_id, first, args_non_parallel={"x": 1})
    add_workflow_task(
        client, headers, project_id, workflow_id, second,
        meta_parallel={"mem": 10}, input_filters={"types": {"3D": True}},
    )

    response = client.get(f"/api/v2/project/{project_id}/workflow/{workflow_id}/export/", headers=headers)
    assert response.status_code == 200
    exported = response.json
    assert exported == {
        "name": "my workflow",
        "task_list": [
            {
                "meta_non_parallel": {"cpus": 2}, "meta_parallel": None,
                "args_non_parallel": {"x": 1}, "args_parallel": None,
                "input_filters": {"attributes": {}, "types": {}},
                "task": {"pkg_name": "fractal-tasks-core", "version": "1.3.0", "name": "create"},
            },
            {
                "meta_non_parallel": None, "meta_parallel": {"mem": 10},
                "args_non_parallel": None, "args_parallel": None,
                "input_filters": {"attributes": {}, "types": {"3D": True}},
                "task": {"pkg_name": "fractal-tasks-core", "version": "1.3.0", "name": "measure"},
            },
        ],
    }
    assert not all_keys(exported) & IDS

    response = client.get(f"/api/v2/project/{project_id}/workflow/999/export/", headers=headers)
    assert (response.status_code, response.json["detail"]) == (404, "Workflow not found")
    response = client.get(f"/api/v2/project/{project_id}/workflow/{workflow_id}/export/", headers=bob[1])
    assert response.status_code == 403

    other_project = create_project(client, headers, "other")
    response = client.post(import_url(other_project), json=exported, headers=headers)
    assert response.status_code == 201
    body = response.json
    assert body["name"] == "my workflow"
    assert body["project_id"] == other_project
    assert [item["task_id"] for item in body["task_list"]] == [first, second]
    assert [item["order"] for item in body["task_list"]] == [0, 1]
    assert [item["warning"] for item in body["task_list"]] == [None, None]
    for original, copy in zip(exported["task_list"], body["task_list"]):
        for key in ("meta_non_parallel", "meta_parallel", "args_non_parallel", "args_parallel", "input_filters"):
            assert copy[key] == original[key]


# --- Import: request and project checks --------------------------------------


def test_import_name_and_project_checks(client, app, alice, bob):
    user_id, headers = alice
    project_id = create_project(client, headers)
    create_workflow(client, headers, project_id, "taken")
    create_task(app, create_task_group(app, user_id, pkg_name="pkg"), name="task")

    response = do_import(client, headers, project_id, new_form(), name="taken")
    assert (response.status_code, response.json["detail"]) == (
        422, f"Workflow with name='taken' and project_id={project_id} already exists."
    )
    response = do_import(client, headers, 999, new_form())
    assert (response.status_code, response.json["detail"]) == (404, "Project not found")
    response = do_import(client, bob[1], project_id, new_form())
    assert (response.status_code, response.json["detail"]) == (403, f"Not allowed on project {project_id}")
    assert do_import(client, headers, project_id, name="empty").json["task_list"] == []


@pytest.mark.parametrize(
    "item, errors",
    [
        ({"task": {"pkg_name": "p", "name": "n", "extra": 1}}, [
            (["body", "task_list", 0, "task", "extra"], "extra fields not permitted"),
            (["body", "task_list", 0, "task", "source"], "field required"),
        ]),
        ({"task": {"pkg_name": " ", "name": "n"}}, [
            (["body", "task_list", 0, "task", "pkg_name"], "String attribute 'pkg_name' cannot be empty"),
            (["body", "task_list", 0, "task", "source"], "field required"),
        ]),
        ({}, [(["body", "task_list", 0, "task"], "field required")]),
        ({"task": {"source": "s"}, "order": 1}, [(["body", "task_list", 0, "order"], "extra fields not permitted")]),
        ({"task": {"source": "s"}, "args_parallel": {"zarr_url": "/a"}}, [
            (["body", "task_list", 0, "args_parallel"], "`args` contains the following forbidden keys: {'zarr_url'}"),
        ]),
        ({"task": {"source": "s"}, "args_non_parallel": {"a": 1, "a ": 2}}, [
            (["body", "task_list", 0, "args_non_parallel"], "Dictionary contains multiple identical keys"),
        ]),
        ({"task": {"source": "s"}, "input_filters": None}, [
            (["body", "task_list", 0, "input_filters"], "none is not an allowed value"),
        ]),
    ],
)
def test_import_validation(client, alice, item, errors):
    project_id = create_project(client, alice[1])
    response = do_import(client, alice[1], project_id, item)
    assert response.status_code == 422
    assert [(error["loc"], error["msg"]) for error in response.json["detail"]] == errors


def test_import_body_shape(client, alice):
    project_id = create_project(client, alice[1])
    response = client.post(import_url(project_id), json={"name": "x"}, headers=alice[1])
    assert response.json["detail"] == [
        {"loc": ["body", "task_list"], "msg": "field required", "type": "value_error.missing"}
    ]
    response = client.post(import_url(project_id), json={"name": "x", "task_list": [], "id": 1}, headers=alice[1])
    assert response.json["detail"][0]["loc"] == ["body", "id"]


# --- Import: the legacy form -------------------------------------------------


def test_import_legacy_source(client, app, alice, bob):
    alice_id, headers = alice
    bob_id, _ = bob
    project_id = create_project(client, headers)
    bob_private = create_task_group(app, bob_id, pkg_name="bob")
    create_task(app, bob_private, name="hidden", source="pip:hidden")
    shared = create_task_group(app, bob_id, pkg_name="shared", user_group_id=all_group_id(app))
    first = create_task(app, shared, name="a", source="pip:dup")
    own = create_task_group(app, alice_id, pkg_name="own")
    create_task(app, own, name="b", source="pip:dup")
    unique = create_task(app, own, name="c", source="pip:unique")

    response = do_import(client, headers, project_id, {"task": {"source": "pip:dup"}}, {"task": {"source": "pip:unique"}})
    assert imported_task_ids(response) == [first, unique]
    no_match(do_import(client, headers, project_id, {"task": {"source": "pip:hidden"}}, name="w2"), "source='pip:hidden'")


# --- Import: the new form ----------------------------------------------------


def test_import_no_match_rendering(client, app, alice):
    alice_id, headers = alice
    project_id = create_project(client, headers)
    create_task(app, create_task_group(app, alice_id, pkg_name="pkg", version="1.0"), name="task")
    no_match(do_import(client, headers, project_id, new_form(pkg_name="other")), "pkg_name='other' version=None name='task'")
    no_match(do_import(client, headers, project_id, new_form(name="other")), "pkg_name='pkg' version=None name='other'")
    no_match(do_import(client, headers, project_id, new_form(version="2.0")), "pkg_name='pkg' version='2.0' name='task'")
    # nothing was created
    assert client.get(f"/api/v2/project/{project_id}/workflow/", headers=headers).json == []


def test_import_latest_version_is_compared_as_string(client, app, alice):
    alice_id, headers = alice
    project_id = create_project(client, headers)
    old = create_task(app, create_task_group(app, alice_id, pkg_name="pkg", version="0.9.0"), name="task")
    new = create_task(app, create_task_group(app, alice_id, pkg_name="pkg", version="0.10.0"), name="task")
    create_task(app, create_task_group(app, alice_id, pkg_name="pkg", version="0.99.0"), name="another")
    response = do_import(client, headers, project_id, new_form(), new_form(version="0.10.0"))
    assert imported_task_ids(response) == [old, new]  # "0.9.0" > "0.10.0" as strings


def test_import_null_versions(client, app, alice):
    alice_id, headers = alice
    project_id = create_project(client, headers)
    unversioned = create_task(app, create_task_group(app, alice_id, pkg_name="pkg", version=None), name="task")
    assert imported_task_ids(do_import(client, headers, project_id, new_form())) == [unversioned]
    # a versioned group wins over a null version ("" is the smallest string)
    versioned = create_task(app, create_task_group(app, alice_id, pkg_name="pkg", version="0"), name="task")
    assert imported_task_ids(do_import(client, headers, project_id, new_form(), name="w2")) == [versioned]


def test_import_disambiguation(client, app, alice, bob, carol):
    alice_id, headers = alice
    bob_id, _ = bob
    carol_id, _ = carol
    project_id = create_project(client, headers)
    recent = create_user_group(app, "recent", [alice_id, carol_id], joined_days_ago=1)
    older = create_user_group(app, "older", [alice_id, carol_id], joined_days_ago=5)

    def shared_task(owner, group):
        return create_task(app, create_task_group(app, owner, pkg_name="pkg", version="1", user_group_id=group), name="task")

    via_recent = shared_task(carol_id, recent)
    via_older = shared_task(carol_id, older)
    assert imported_task_ids(do_import(client, headers, project_id, new_form(), name="w1")) == [via_older]
    via_all = shared_task(bob_id, all_group_id(app))
    assert imported_task_ids(do_import(client, headers, project_id, new_form(), name="w2")) == [via_all]
    owned = shared_task(alice_id, None)
    assert imported_task_ids(do_import(client, headers, project_id, new_form(), name="w3")) == [owned]


def test_import_ignores_groups_without_access(client, app, alice, bob):
    alice_id, headers = alice
    bob_id, bob_headers = bob
    project_id = create_project(client, headers)
    lab = create_user_group(app, "lab", [bob_id])
    create_task(app, create_task_group(app, bob_id, pkg_name="pkg"), name="task")
    create_task(app, create_task_group(app, bob_id, pkg_name="pkg", version="2", user_group_id=lab), name="task")
    no_match(do_import(client, headers, project_id, new_form()), "pkg_name='pkg' version=None name='task'")
    # bob, the owner, can import them
    bob_project = create_project(client, bob_headers)
    assert len(imported_task_ids(do_import(client, bob_headers, bob_project, new_form()))) == 1


def test_import_version_filter_uses_all_candidates(client, app, alice):
    """[quirk] the version filter runs on every candidate group, not only on matching ones."""
    alice_id, headers = alice
    project_id = create_project(client, headers)
    v1 = create_task(app, create_task_group(app, alice_id, pkg_name="pkg", version="1.0"), name="task")
    foreign = create_task(app, create_task_group(app, alice_id, pkg_name="other-pkg", version="2.0"), name="task")
    create_task(app, create_task_group(app, alice_id, pkg_name="third", version="3.0"), name="unrelated")
    # the only group with version 2.0 is another package: it is chosen anyway
    assert imported_task_ids(do_import(client, headers, project_id, new_form(version="2.0"))) == [foreign]
    # the only group with version 3.0 has no task with that name: no match
    no_match(
        do_import(client, headers, project_id, new_form(version="3.0"), name="w2"),
        "pkg_name='pkg' version='3.0' name='task'",
    )
    # several groups with version 0.5: disambiguation among all matching groups of `pkg`
    # picks the first owned one, whatever its version
    create_task(app, create_task_group(app, alice_id, pkg_name="pkg", version="0.5"), name="task")
    create_task(app, create_task_group(app, alice_id, pkg_name="fourth", version="0.5"), name="x")
    response = do_import(client, headers, project_id, new_form(version="0.5"), name="w3")
    assert imported_task_ids(response) == [v1]


def test_import_inactive_tasks_and_no_compatibility_checks(client, app, alice):
    alice_id, headers = alice
    project_id = create_project(client, headers)
    group_id = create_task_group(app, alice_id, pkg_name="pkg", active=False)
    task_id = create_task(app, group_id, name="task", type="parallel", meta_parallel={"cpus": 1})
    response = do_import(client, headers, project_id, {
        **new_form(),
        "args_non_parallel": {"a": 1},
        "meta_parallel": {"mem": 5},
        "meta_non_parallel": {"x": 1},
    })
    assert response.status_code == 201
    item = response.json["task_list"][0]
    assert item["task_id"] == task_id
    assert item["warning"] == "Task is not active."
    assert item["args_non_parallel"] == {"a": 1}
    assert item["meta_parallel"] == {"cpus": 1, "mem": 5}
    assert item["meta_non_parallel"] == {"x": 1}
    assert item["task_type"] == "parallel"
