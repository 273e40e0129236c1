"""`/auth/group/...`: user groups, members, viewer paths and shared settings."""
import pytest

from fractal_server.db import db
from fractal_server.db.models import TaskGroupV2

from .helpers import CANNOT_REMOVE_FROM_ALL, TIMESTAMP, validation_error


def create_group(client, admin, name="team", **body):
    return client.post("/auth/group/", headers=admin, json={"name": name, **body})


def add_user(client, admin, group_id, user_id):
    return client.post(f"/auth/group/{group_id}/add-user/{user_id}/", headers=admin)


def remove_user(client, admin, group_id, user_id):
    return client.post(f"/auth/group/{group_id}/remove-user/{user_id}/", headers=admin)


@pytest.fixture
def bob(bob):
    """The user id of the shared `bob`."""
    return bob[0]


@pytest.fixture
def team(client, admin):
    """Id of an empty group named `team`."""
    return create_group(client, admin).json["id"]


# -- reading ---------------------------------------------------------------------------


def test_list_groups_without_user_ids(client, admin, team):
    response = client.get("/auth/group/", headers=admin)
    assert response.status_code == 200
    assert [(group["id"], group["name"], group["user_ids"]) for group in response.json] == [
        (1, "All", None),
        (team, "team", None),
    ]
    assert all(TIMESTAMP.match(group["timestamp_created"]) for group in response.json)


def test_list_groups_with_user_ids_in_membership_order(client, admin, make_user, team):
    carol, _ = make_user("carol@example.org")
    bob, _ = make_user("bob@example.org")
    add_user(client, admin, team, bob)
    add_user(client, admin, team, carol)
    response = client.get("/auth/group/?user_ids=true", headers=admin)
    assert [(group["name"], group["user_ids"]) for group in response.json] == [
        ("All", [1, carol, bob]),
        ("team", [bob, carol]),
    ]


def test_read_group(client, admin, bob, team):
    add_user(client, admin, team, bob)
    response = client.get(f"/auth/group/{team}/", headers=admin)
    assert response.status_code == 200
    assert response.json == {
        "id": team,
        "name": "team",
        "timestamp_created": response.json["timestamp_created"],
        "user_ids": [bob],
        "viewer_paths": [],
    }
    assert TIMESTAMP.match(response.json["timestamp_created"])


def test_read_unknown_group(client, admin):
    response = client.get("/auth/group/999/", headers=admin)
    assert (response.status_code, response.json) == (404, {"detail": "UserGroup 999 not found."})


# -- creating ---------------------------------------------------------------------------


def test_create_group(client, admin):
    response = create_group(client, admin, viewer_paths=["/data/a", "/data/b/"])
    assert response.status_code == 201
    assert response.json == {
        "id": 2,
        "name": "team",
        "timestamp_created": response.json["timestamp_created"],
        "user_ids": [],
        "viewer_paths": ["/data/a", "/data/b/"],
    }
    assert TIMESTAMP.match(response.json["timestamp_created"])


def test_create_group_with_empty_name(client, admin):
    response = create_group(client, admin, name="")
    assert (response.status_code, response.json["name"]) == (201, "")


def test_create_group_with_existing_name(client, admin, team):
    response = create_group(client, admin, name="team")
    assert (response.status_code, response.json) == (422, {"detail": "A group with the same name already exists"})


def test_create_group_needs_a_name(client, admin):
    response = client.post("/auth/group/", headers=admin, json={"viewer_paths": []})
    assert response.status_code == 422
    assert response.json == validation_error(["body", "name"], "field required", "value_error.missing")


def test_create_group_rejects_unknown_keys(client, admin):
    response = create_group(client, admin, user_ids=[1])
    assert response.status_code == 422
    assert response.json == validation_error(["body", "user_ids"], "extra fields not permitted", "value_error.extra")


@pytest.mark.parametrize(
    "paths, message",
    [
        (["/ok", "relative"], "String attribute 'viewer_paths[1]' must be an absolute path (given 'relative')."),
        (["  "], "String attribute 'viewer_paths[0]' cannot be empty"),
        (["/a", "/a"], "`viewer_paths` list has repetitions"),
    ],
    ids=["relative", "empty", "repeated"],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_viewer_paths_rules(client, admin, team, method, paths, message):
    if method == "POST":
        response = create_group(client, admin, name="other", viewer_paths=paths)
    else:
        response = client.patch(f"/auth/group/{team}/", headers=admin, json={"viewer_paths": paths})
    assert response.status_code == 422
    assert response.json == validation_error(["body", "viewer_paths"], message)


def test_viewer_paths_are_stripped(client, admin):
    assert create_group(client, admin, viewer_paths=[" /a "]).json["viewer_paths"] == ["/a"]


# -- patching ------------------------------------------------------------------------------


def test_patch_group_replaces_viewer_paths(client, admin, bob, team):
    add_user(client, admin, team, bob)
    client.patch(f"/auth/group/{team}/", headers=admin, json={"viewer_paths": ["/old"]})
    response = client.patch(f"/auth/group/{team}/", headers=admin, json={"viewer_paths": ["/new", "/other"]})
    assert response.status_code == 200
    assert (response.json["viewer_paths"], response.json["user_ids"]) == (["/new", "/other"], [bob])


def test_patch_group_with_empty_body_changes_nothing(client, admin):
    team = create_group(client, admin, viewer_paths=["/a"]).json["id"]
    response = client.patch(f"/auth/group/{team}/", headers=admin, json={})
    assert (response.status_code, response.json["viewer_paths"]) == (200, ["/a"])


def test_patch_group_null_viewer_paths(client, admin, team):
    response = client.patch(f"/auth/group/{team}/", headers=admin, json={"viewer_paths": None})
    assert response.status_code == 422
    expected = validation_error(["body", "viewer_paths"], "'NoneType' object is not iterable", "type_error")
    assert response.json == expected


def test_group_name_cannot_change(client, admin, team):
    response = client.patch(f"/auth/group/{team}/", headers=admin, json={"name": "renamed"})
    assert response.status_code == 422
    assert response.json == validation_error(["body", "name"], "extra fields not permitted", "value_error.extra")


def test_patch_unknown_group(client, admin):
    response = client.patch("/auth/group/999/", headers=admin, json={"viewer_paths": []})
    assert (response.status_code, response.json) == (404, {"detail": "UserGroup 999 not found."})


# -- deleting --------------------------------------------------------------------------------


def add_task_group(app, user_id, user_group_id) -> int:
    with app.app_context():
        task_group = TaskGroupV2(user_id=user_id, user_group_id=user_group_id, origin="other", pkg_name="pkg")
        db.session.add(task_group)
        db.session.commit()
        return task_group.id


def task_group_owner_group(app, task_group_id):
    with app.app_context():
        return db.session.get(TaskGroupV2, task_group_id).user_group_id


def test_delete_group(app, client, admin, bob, team):
    add_user(client, admin, team, bob)
    shared = add_task_group(app, bob, team)
    public = add_task_group(app, bob, 1)
    response = client.delete(f"/auth/group/{team}/", headers=admin)
    assert (response.status_code, response.data) == (204, b"")
    assert client.get(f"/auth/group/{team}/", headers=admin).status_code == 404
    assert client.get(f"/auth/users/{bob}/", headers=admin).json["group_ids_names"] == [[1, "All"]]
    assert task_group_owner_group(app, shared) is None
    assert task_group_owner_group(app, public) == 1


def test_delete_group_all(client, admin):
    response = client.delete("/auth/group/1/", headers=admin)
    assert (response.status_code, response.json) == (422, {"detail": "Cannot delete default UserGroup 'All'."})


def test_delete_unknown_group(client, admin):
    response = client.delete("/auth/group/999/", headers=admin)
    assert (response.status_code, response.json) == (404, {"detail": "UserGroup 999 not found."})


# -- settings of all members --------------------------------------------------------------------


def settings_of(client, admin, user_id):
    return client.get(f"/auth/users/{user_id}/settings/", headers=admin).json


def test_group_user_settings_apply_to_every_member(client, admin, make_user, team):
    members = [make_user(f"member{i}@example.org")[0] for i in range(2)]
    outsider, _ = make_user("outsider@example.org")
    for user_id in members:
        add_user(client, admin, team, user_id)
    client.patch(f"/auth/users/{members[0]}/settings/", headers=admin, json={"ssh_host": "kept"})
    body = {"slurm_user": "shared", "slurm_accounts": ["acc"], "project_dir": "/shared"}
    response = client.patch(f"/auth/group/{team}/user-settings/", headers=admin, json=body)
    assert (response.status_code, response.data) == (200, b"")
    for user_id in members:
        settings = settings_of(client, admin, user_id)
        assert {key: settings[key] for key in body} == body
    assert settings_of(client, admin, members[0])["ssh_host"] == "kept"
    assert settings_of(client, admin, outsider)["slurm_user"] is None


def test_group_user_settings_validation(client, admin, team):
    """The body follows the rules of `PATCH /auth/users/{id}/settings/`."""
    for key, value in [("project_dir", "relative"), ("slurm_accounts", None), ("cache_dir", "/x")]:
        response = client.patch(f"/auth/group/{team}/user-settings/", headers=admin, json={key: value})
        assert response.status_code == 422, key
        assert response.json["detail"][0]["loc"] == ["body", key]


def test_group_user_settings_of_unknown_group(client, admin):
    response = client.patch("/auth/group/999/user-settings/", headers=admin, json={"slurm_user": "x"})
    assert (response.status_code, response.json) == (404, {"detail": "UserGroup 999 not found."})


# -- adding and removing members -------------------------------------------------------------------


def test_add_user(client, admin, bob, team):
    response = add_user(client, admin, team, bob)
    assert response.status_code == 200
    assert (response.json["id"], response.json["user_ids"]) == (team, [bob])


def test_add_user_to_unknown_group_comes_first(client, admin):
    response = add_user(client, admin, 999, 888)
    assert (response.status_code, response.json) == (404, {"detail": "UserGroup 999 not found."})


def test_add_unknown_user(client, admin, team):
    response = add_user(client, admin, team, 888)
    assert (response.status_code, response.json) == (404, {"detail": "User 888 not found."})


def test_add_user_twice(client, admin, bob, team):
    add_user(client, admin, team, bob)
    response = add_user(client, admin, team, bob)
    assert response.status_code == 422
    assert response.json == {"detail": f"User 'bob@example.org' is already a member of group {team}."}


def test_remove_user(client, admin, bob, team):
    add_user(client, admin, team, bob)
    response = remove_user(client, admin, team, bob)
    assert response.status_code == 200
    assert (response.json["id"], response.json["user_ids"]) == (team, [])
    assert client.get(f"/auth/users/{bob}/", headers=admin).json["group_ids_names"] == [[1, "All"]]


def test_remove_user_from_unknown_group_comes_first(client, admin):
    response = remove_user(client, admin, 999, 888)
    assert (response.status_code, response.json) == (404, {"detail": "UserGroup 999 not found."})


def test_remove_unknown_user_comes_before_group_all_check(client, admin):
    response = remove_user(client, admin, 1, 888)
    assert (response.status_code, response.json) == (404, {"detail": "User 888 not found."})


def test_remove_user_from_group_all(client, admin, bob):
    response = remove_user(client, admin, 1, bob)
    assert (response.status_code, response.json) == (422, CANNOT_REMOVE_FROM_ALL)
    assert bob in client.get("/auth/group/1/", headers=admin).json["user_ids"]


def test_remove_user_who_is_not_a_member(client, admin, bob, team):
    response = remove_user(client, admin, team, bob)
    assert response.status_code == 422
    assert response.json == {"detail": f"User 'bob@example.org' is not a member of group {team}."}
