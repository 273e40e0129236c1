"""`/auth/register/` and `/auth/users/...`: user management by superusers."""
import pytest

from fractal_server.db import db
from fractal_server.db.models import LinkUserGroup, User, UserGroup

from .helpers import CANNOT_REMOVE_FROM_ALL, login, validation_error

EMPTY_SETTINGS = {
    "ssh_host": None,
    "ssh_username": None,
    "ssh_private_key_path": None,
    "ssh_tasks_dir": None,
    "ssh_jobs_dir": None,
    "slurm_user": None,
    "slurm_accounts": [],
    "project_dir": None,
}


def register(client, admin, **body):
    body = {"email": "new@example.org", "password": "secret", **body}
    return client.post("/auth/register/", headers=admin, json=body)


def patch_user(client, admin, user_id, body):
    return client.patch(f"/auth/users/{user_id}/", headers=admin, json=body)


def new_group(client, admin, name):
    return client.post("/auth/group/", headers=admin, json={"name": name}).json["id"]


# -- registration ----------------------------------------------------------------


def test_register(client, admin):
    response = register(client, admin, username="newbie")
    assert response.status_code == 201
    assert response.json == {
        "id": 2,
        "email": "new@example.org",
        "is_active": True,
        "is_superuser": False,
        "is_verified": False,
        "username": "newbie",
        "group_ids_names": None,
        "oauth_accounts": [],
    }


def test_register_ignores_role_flags(client, admin):
    response = register(client, admin, is_active=False, is_superuser=True, is_verified=True)
    assert response.status_code == 201
    flags = {key: response.json[key] for key in ("is_active", "is_superuser", "is_verified")}
    assert flags == {"is_active": True, "is_superuser": False, "is_verified": False}


def test_register_ignores_unknown_keys(client, admin):
    assert register(client, admin, shoe_size=42).status_code == 201


def test_registered_user_joins_all_and_gets_empty_settings(client, admin):
    user_id = register(client, admin).json["id"]
    assert client.get(f"/auth/users/{user_id}/", headers=admin).json["group_ids_names"] == [[1, "All"]]
    settings = client.get(f"/auth/users/{user_id}/settings/", headers=admin)
    assert settings.status_code == 200
    assert settings.json == {"id": settings.json["id"], **EMPTY_SETTINGS}
    assert client.get("/auth/group/1/", headers=admin).json["user_ids"] == [1, user_id]


def test_registration_without_group_all(app, client, admin):
    with app.app_context():
        db.session.query(LinkUserGroup).delete()
        db.session.query(UserGroup).delete()
        db.session.commit()
    user_id = register(client, admin).json["id"]
    assert client.get(f"/auth/users/{user_id}/", headers=admin).json["group_ids_names"] == []


def test_registered_user_logs_in_and_password_is_hashed(app, client, admin):
    user_id = register(client, admin, email="New@Example.org").json["id"]
    assert login(client, "new@example.org", "secret").status_code == 200
    with app.app_context():
        hashed = db.session.get(User, user_id).hashed_password
    assert hashed.startswith("$2b$") and "secret" not in hashed


@pytest.mark.parametrize("password", ["abcd", "x" * 100])
def test_register_password_length_limits_are_inclusive(client, admin, password):
    assert register(client, admin, password=password).status_code == 201


def test_register_password_too_short(client, admin):
    response = register(client, admin, password="abc")
    assert response.status_code == 400
    assert response.json == {
        "detail": {"code": "REGISTER_INVALID_PASSWORD", "reason": "The password is too short (minimum length: 4)."}
    }


def test_register_password_too_long(client, admin):
    response = register(client, admin, password="x" * 101)
    assert response.status_code == 400
    assert response.json["detail"]["code"] == "REGISTER_INVALID_PASSWORD"
    assert response.json["detail"]["reason"].startswith("The password is too long (maximum length: ")


def test_register_existing_email_case_insensitively(client, admin):
    register(client, admin, email="new@example.org")
    response = register(client, admin, email="NEW@example.org")
    assert (response.status_code, response.json) == (400, {"detail": "REGISTER_USER_ALREADY_EXISTS"})


def test_register_invalid_email(client, admin):
    response = register(client, admin, email="not-an-email")
    assert response.status_code == 422
    assert response.json == validation_error(
        ["body", "email"], "value is not a valid email address", "value_error.email"
    )


@pytest.mark.parametrize("missing", ["email", "password"])
def test_register_missing_field(client, admin, missing):
    body = {"email": "new@example.org", "password": "secret"}
    del body[missing]
    response = client.post("/auth/register/", headers=admin, json=body)
    assert response.status_code == 422
    assert response.json == validation_error(["body", missing], "field required", "value_error.missing")


def test_register_username_is_stripped_and_nonempty(client, admin):
    assert register(client, admin, username=" bob ").json["username"] == "bob"
    response = register(client, admin, email="other@example.org", username="   ")
    assert response.status_code == 422
    assert response.json == validation_error(["body", "username"], "String attribute 'username' cannot be empty")


# -- reading users ----------------------------------------------------------------------


def test_list_users_without_groups(client, admin, make_user):
    other_id, _ = make_user("other@example.org")
    response = client.get("/auth/users/", headers=admin)
    assert response.status_code == 200
    assert [user["id"] for user in response.json] == [1, other_id]
    assert [user["email"] for user in response.json] == ["admin@example.org", "other@example.org"]
    assert all(user["group_ids_names"] is None for user in response.json)


def test_read_user_with_groups_by_default(client, admin):
    response = client.get("/auth/users/1/", headers=admin)
    assert response.status_code == 200
    assert response.json["email"] == "admin@example.org"
    assert response.json["group_ids_names"] == [[1, "All"]]


def test_read_user_without_groups(client, admin):
    response = client.get("/auth/users/1/?group_ids_names=false", headers=admin)
    assert response.json["group_ids_names"] is None


def test_group_all_comes_first_in_group_ids_names(app, client, admin, make_user):
    """`All` is first even when the user joined it after other groups."""
    user_id, _ = make_user("other@example.org")
    with app.app_context():
        db.session.query(LinkUserGroup).filter_by(user_id=user_id).delete()
        db.session.commit()
    beta, alpha = new_group(client, admin, "beta"), new_group(client, admin, "alpha")
    for group_id in (beta, alpha, 1):
        assert client.post(f"/auth/group/{group_id}/add-user/{user_id}/", headers=admin).status_code == 200
    response = client.get(f"/auth/users/{user_id}/", headers=admin)
    assert response.json["group_ids_names"] == [[1, "All"], [beta, "beta"], [alpha, "alpha"]]


def test_read_unknown_user(client, admin):
    response = client.get("/auth/users/999/", headers=admin)
    assert (response.status_code, response.json) == (404, {"detail": "User 999 not found."})


def test_users_cannot_be_deleted(client, admin):
    response = client.delete("/auth/users/1/", headers=admin)
    assert (response.status_code, response.json) == (405, {"detail": "Method Not Allowed"})


# -- PATCH /auth/users/{id}/ -----------------------------------------------------------------


@pytest.fixture
def bob(make_user):
    """Id of a verified regular user."""
    user_id, _ = make_user("bob@example.org", "secret", is_verified=True)
    return user_id


def test_patch_user_flags_and_username(client, admin, bob):
    response = patch_user(client, admin, bob, {"is_superuser": True, "is_active": False, "username": " bobby "})
    assert response.status_code == 200
    assert response.json["is_superuser"] is True
    assert response.json["is_active"] is False
    assert response.json["username"] == "bobby"
    assert response.json["group_ids_names"] == [[1, "All"]]


def test_patch_user_null_is_rejected(client, admin, bob):
    for field in ("is_active", "is_verified", "is_superuser", "email", "password"):
        response = patch_user(client, admin, bob, {field: None})
        assert response.status_code == 422, field
        assert response.json == validation_error(["body", field], f"Cannot set {field}=None")


def test_patch_user_null_username_is_rejected(client, admin, bob):
    response = patch_user(client, admin, bob, {"username": None})
    assert response.status_code == 422
    assert response.json == validation_error(["body", "username"], "String attribute 'username' cannot be None")


def test_patch_user_empty_username_is_rejected(client, admin, bob):
    response = patch_user(client, admin, bob, {"username": "  "})
    assert response.status_code == 422
    assert response.json == validation_error(["body", "username"], "String attribute 'username' cannot be empty")


def test_patch_user_unknown_key_is_rejected(client, admin, bob):
    response = patch_user(client, admin, bob, {"slurm_user": "bob"})
    assert response.status_code == 422
    assert response.json == validation_error(["body", "slurm_user"], "extra fields not permitted", "value_error.extra")


def test_patch_user_invalid_email(client, admin, bob):
    response = patch_user(client, admin, bob, {"email": "nope"})
    assert response.status_code == 422
    assert response.json["detail"][0]["type"] == "value_error.email"


def test_changing_email_resets_verification(client, admin, bob):
    response = patch_user(client, admin, bob, {"email": "robert@example.org"})
    assert response.status_code == 200
    assert (response.json["email"], response.json["is_verified"]) == ("robert@example.org", False)


def test_changing_email_keeps_verification_given_in_the_same_body(client, admin, bob):
    response = patch_user(client, admin, bob, {"email": "robert@example.org", "is_verified": True})
    assert (response.json["email"], response.json["is_verified"]) == ("robert@example.org", True)


def test_same_email_keeps_verification(client, admin, bob):
    response = patch_user(client, admin, bob, {"email": "bob@example.org"})
    assert (response.status_code, response.json["is_verified"]) == (200, True)


@pytest.mark.parametrize("email", ["admin@example.org", "ADMIN@example.org"])
def test_patch_user_email_already_used(client, admin, bob, email):
    response = patch_user(client, admin, bob, {"email": email})
    assert (response.status_code, response.json) == (400, {"detail": "UPDATE_USER_EMAIL_ALREADY_EXISTS"})


def test_patch_user_password(client, admin, bob):
    assert patch_user(client, admin, bob, {"password": "new-secret"}).status_code == 200
    assert login(client, "bob@example.org", "new-secret").status_code == 200
    assert login(client, "bob@example.org", "secret").status_code == 400


def test_patch_user_password_too_short(client, admin, bob):
    response = patch_user(client, admin, bob, {"password": "abc"})
    assert response.status_code == 400
    assert response.json == {
        "detail": {"code": "UPDATE_USER_INVALID_PASSWORD", "reason": "The password is too short (minimum length: 4)."}
    }


def test_patch_user_password_too_long(client, admin, bob):
    response = patch_user(client, admin, bob, {"password": "x" * 101})
    assert response.status_code == 400
    assert response.json["detail"]["code"] == "UPDATE_USER_INVALID_PASSWORD"


def test_patch_unknown_user(client, admin):
    response = patch_user(client, admin, 999, {"is_verified": True})
    assert (response.status_code, response.json) == (404, {"detail": "User 999 not found."})


def test_deactivated_user_is_locked_out(client, admin, make_user):
    user_id, headers = make_user("carol@example.org", "secret")
    patch_user(client, admin, user_id, {"is_active": False})
    assert client.get("/auth/current-user/", headers=headers).status_code == 401
    assert login(client, "carol@example.org", "secret").status_code == 400


# -- set-groups ----------------------------------------------------------------------------


def set_groups(client, admin, user_id, group_ids):
    return client.post(f"/auth/users/{user_id}/set-groups/", headers=admin, json={"group_ids": group_ids})


def test_set_groups_makes_membership_exact(client, admin, bob):
    a, b, c = (new_group(client, admin, name) for name in "abc")
    for group_id in (a, b):
        client.post(f"/auth/group/{group_id}/add-user/{bob}/", headers=admin)
    response = set_groups(client, admin, bob, [c, 1, a])
    assert response.status_code == 200
    assert response.json["id"] == bob
    assert response.json["group_ids_names"] == [[1, "All"], [a, "a"], [c, "c"]]
    assert bob not in client.get(f"/auth/group/{b}/", headers=admin).json["user_ids"]
    assert bob in client.get(f"/auth/group/{c}/", headers=admin).json["user_ids"]


def test_set_groups_needs_at_least_one_group(client, admin, bob):
    response = set_groups(client, admin, bob, [])
    assert response.status_code == 422
    assert response.json == {
        "detail": [
            {
                "loc": ["body", "group_ids"],
                "msg": "ensure this value has at least 1 items",
                "type": "value_error.list.min_items",
                "ctx": {"limit_value": 1},
            }
        ]
    }


def test_set_groups_rejects_repetitions(client, admin, bob):
    response = set_groups(client, admin, bob, [1, 1])
    assert response.status_code == 422
    assert response.json == validation_error(["body", "group_ids"], "`group_ids` list has repetitions")


def test_set_groups_rejects_unknown_keys(client, admin, bob):
    response = client.post(f"/auth/users/{bob}/set-groups/", headers=admin, json={"group_ids": [1], "x": 1})
    assert response.status_code == 422
    assert response.json == validation_error(["body", "x"], "extra fields not permitted", "value_error.extra")


def test_set_groups_unknown_user_comes_first(client, admin):
    response = set_groups(client, admin, 999, [2])
    assert (response.status_code, response.json) == (404, {"detail": "User 999 not found."})


@pytest.mark.parametrize("group_ids", [[1, 99], [99]])
def test_set_groups_unknown_group(client, admin, bob, group_ids):
    """Unknown groups are reported before the check on `All`."""
    response = set_groups(client, admin, bob, group_ids)
    assert (response.status_code, response.json) == (404, {"detail": f"Some UserGroups in {group_ids} do not exist."})


def test_set_groups_requires_group_all(client, admin, bob):
    other = new_group(client, admin, "other")
    response = set_groups(client, admin, bob, [other])
    assert (response.status_code, response.json) == (422, CANNOT_REMOVE_FROM_ALL)
    assert client.get(f"/auth/users/{bob}/", headers=admin).json["group_ids_names"] == [[1, "All"]]


# -- user settings --------------------------------------------------------------------------


def patch_settings(client, admin, user_id, body):
    return client.patch(f"/auth/users/{user_id}/settings/", headers=admin, json=body)


def test_read_user_settings(client, admin, bob):
    response = client.get(f"/auth/users/{bob}/settings/", headers=admin)
    assert response.status_code == 200
    assert set(response.json) == {"id", *EMPTY_SETTINGS}
    assert isinstance(response.json["id"], int)
    assert {key: value for key, value in response.json.items() if key != "id"} == EMPTY_SETTINGS


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_settings_of_unknown_user(client, admin, method):
    response = client.open("/auth/users/999/settings/", method=method, headers=admin, json={})
    assert (response.status_code, response.json) == (404, {"detail": "User 999 not found."})


def test_patch_user_settings(client, admin, bob):
    body = {
        "ssh_host": " host.example.org ",
        "ssh_username": "bob",
        "ssh_private_key_path": "/keys/bob",
        "ssh_tasks_dir": "/tasks/",
        "ssh_jobs_dir": "/jobs",
        "slurm_user": "bob",
        "slurm_accounts": [" acc1", "acc2 "],
        "project_dir": "/projects/bob",
    }
    response = patch_settings(client, admin, bob, body)
    assert response.status_code == 200
    expected = {**body, "ssh_host": "host.example.org", "slurm_accounts": ["acc1", "acc2"]}
    assert response.json == {"id": response.json["id"], **expected}
    assert client.get(f"/auth/users/{bob}/settings/", headers=admin).json == response.json


def test_patch_user_settings_touches_only_given_keys(client, admin, bob):
    patch_settings(client, admin, bob, {"slurm_user": "bob", "ssh_host": "h"})
    response = patch_settings(client, admin, bob, {"ssh_host": None})
    assert (response.json["slurm_user"], response.json["ssh_host"]) == ("bob", None)


def test_settings_strings_cannot_be_empty(client, admin, bob):
    for field in ("ssh_host", "ssh_username", "slurm_user"):
        response = patch_settings(client, admin, bob, {field: "   "})
        assert response.status_code == 422, field
        assert response.json == validation_error(["body", field], f"String attribute '{field}' cannot be empty")


def test_settings_paths_must_be_absolute(client, admin, bob):
    for field in ("ssh_private_key_path", "ssh_tasks_dir", "ssh_jobs_dir", "project_dir"):
        response = patch_settings(client, admin, bob, {field: "relative/path"})
        assert response.status_code == 422, field
        assert response.json == validation_error(
            ["body", field], f"String attribute '{field}' must be an absolute path (given 'relative/path')."
        )


def test_project_dir_rejects_forbidden_characters(client, admin, bob):
    """Checked before the absolute-path rule (hence the relative example)."""
    for value in ("/projects/a;b", "/projects/$HOME", "relative`x`"):
        response = patch_settings(client, admin, bob, {"project_dir": value})
        assert response.status_code == 422, value
        [error] = response.json["detail"]
        assert (error["loc"], error["type"]) == (["body", "project_dir"], "value_error")
        assert "must not contain any of this characters" in error["msg"]
        assert f"'{value}'" in error["msg"]


def test_settings_slurm_accounts_are_strict_strings(client, admin, bob):
    response = patch_settings(client, admin, bob, {"slurm_accounts": ["a", 2]})
    assert response.status_code == 422
    assert response.json == validation_error(["body", "slurm_accounts", 1], "str type expected", "type_error.str")


def test_settings_slurm_accounts_cannot_be_empty(client, admin, bob):
    response = patch_settings(client, admin, bob, {"slurm_accounts": ["a", " "]})
    assert response.status_code == 422
    assert response.json == validation_error(
        ["body", "slurm_accounts"], "String attribute 'slurm_accounts[1]' cannot be empty"
    )


def test_settings_slurm_accounts_must_be_unique(client, admin, bob):
    response = patch_settings(client, admin, bob, {"slurm_accounts": ["a", "a"]})
    assert response.status_code == 422
    assert response.json == validation_error(["body", "slurm_accounts"], "`slurm_accounts` list has repetitions")


def test_settings_slurm_accounts_cannot_be_null(client, admin, bob):
    """[quirk] the reference stores null and then fails on every read: 422 instead."""
    response = patch_settings(client, admin, bob, {"slurm_accounts": None})
    assert response.status_code == 422
    assert response.json["detail"][0]["loc"] == ["body", "slurm_accounts"]
    assert client.get(f"/auth/users/{bob}/settings/", headers=admin).status_code == 200


def test_settings_reject_unknown_keys(client, admin, bob):
    response = patch_settings(client, admin, bob, {"cache_dir": "/cache"})
    assert response.status_code == 422
    assert response.json == validation_error(["body", "cache_dir"], "extra fields not permitted", "value_error.extra")
