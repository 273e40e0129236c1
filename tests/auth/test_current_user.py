"""`/auth/current-user/...`: what users see and change about themselves."""
import pytest

from fractal_server.app import create_app
from fractal_server.db import db
from fractal_server.db.models import User

from .helpers import validation_error

EMPTY_STRICT_SETTINGS = {"slurm_user": None, "slurm_accounts": [], "ssh_username": None, "project_dir": None}


def test_read_current_user(client, alice):
    user_id, headers = alice
    response = client.get("/auth/current-user/", headers=headers)
    assert response.status_code == 200
    assert response.json == {
        "id": user_id,
        "email": "alice@example.org",
        "is_active": True,
        "is_superuser": False,
        "is_verified": False,
        "username": None,
        "group_ids_names": None,
        "oauth_accounts": [],
    }


def test_read_current_user_with_groups(client, alice):
    _, headers = alice
    for flag in ("true", "1", "yes", "on"):
        response = client.get(f"/auth/current-user/?group_ids_names={flag}", headers=headers)
        assert response.json["group_ids_names"] == [[1, "All"]], flag


def test_group_ids_names_false_spellings(client, alice):
    _, headers = alice
    for flag in ("false", "0", "no", "off"):
        response = client.get(f"/auth/current-user/?group_ids_names={flag}", headers=headers)
        assert response.json["group_ids_names"] is None


def test_group_ids_names_must_be_a_boolean(client, alice):
    _, headers = alice
    response = client.get("/auth/current-user/?group_ids_names=maybe", headers=headers)
    assert response.status_code == 422
    assert response.json["detail"][0]["loc"] == ["query", "group_ids_names"]


def test_patch_current_user_with_empty_body(client, alice):
    user_id, headers = alice
    response = client.patch("/auth/current-user/", headers=headers, json={})
    assert response.status_code == 200
    assert response.json["id"] == user_id
    assert response.json["group_ids_names"] == [[1, "All"]]


def test_users_cannot_change_their_own_attributes(client, alice):
    _, headers = alice
    attempts = [("password", "new-password"), ("username", "alice"), ("is_superuser", True), ("email", "a@b.org")]
    for key, value in attempts:
        response = client.patch("/auth/current-user/", headers=headers, json={key: value})
        assert response.status_code == 422, key
        assert response.json == validation_error(["body", key], "extra fields not permitted", "value_error.extra")


# -- own settings ----------------------------------------------------------------


def patch_own_settings(client, headers, body):
    return client.patch("/auth/current-user/settings/", headers=headers, json=body)


def test_read_own_settings(client, alice):
    _, headers = alice
    response = client.get("/auth/current-user/settings/", headers=headers)
    assert (response.status_code, response.json) == (200, EMPTY_STRICT_SETTINGS)


def test_read_own_settings_without_settings_row(app, client, alice):
    user_id, headers = alice
    with app.app_context():
        db.session.get(User, user_id).settings = None
        db.session.commit()
    response = client.get("/auth/current-user/settings/", headers=headers)
    assert response.status_code == 422
    assert response.json == {"detail": "Error: user 'alice@example.org' has no settings."}


def test_patch_own_slurm_accounts(client, alice):
    _, headers = alice
    response = patch_own_settings(client, headers, {"slurm_accounts": ["a", "b"]})
    assert response.status_code == 200
    assert response.json == {**EMPTY_STRICT_SETTINGS, "slurm_accounts": ["a", "b"]}
    again = client.get("/auth/current-user/settings/", headers=headers)
    assert again.json["slurm_accounts"] == ["a", "b"]


def test_own_slurm_accounts_are_not_stripped(client, alice):
    _, headers = alice
    response = patch_own_settings(client, headers, {"slurm_accounts": [" a "]})
    assert (response.status_code, response.json["slurm_accounts"]) == (200, [" a "])


def test_patch_own_settings_with_empty_body_changes_nothing(client, alice):
    _, headers = alice
    patch_own_settings(client, headers, {"slurm_accounts": ["a"]})
    response = patch_own_settings(client, headers, {})
    assert (response.status_code, response.json["slurm_accounts"]) == (200, ["a"])


def test_own_slurm_accounts_are_strict_strings(client, alice):
    _, headers = alice
    response = patch_own_settings(client, headers, {"slurm_accounts": [1]})
    assert response.status_code == 422
    assert response.json == validation_error(["body", "slurm_accounts", 0], "str type expected", "type_error.str")


def test_own_slurm_accounts_must_be_unique(client, alice):
    _, headers = alice
    response = patch_own_settings(client, headers, {"slurm_accounts": ["a", "a"]})
    assert response.status_code == 422
    assert response.json == validation_error(["body", "slurm_accounts"], "`slurm_accounts` list has repetitions")


def test_own_slurm_accounts_cannot_be_null(client, alice):
    """[quirk] the reference stores null and then fails on every read: 422 instead."""
    _, headers = alice
    response = patch_own_settings(client, headers, {"slurm_accounts": None})
    assert response.status_code == 422
    assert response.json["detail"][0]["loc"] == ["body", "slurm_accounts"]
    assert client.get("/auth/current-user/settings/", headers=headers).status_code == 200


def test_users_cannot_change_other_settings(client, alice):
    _, headers = alice
    for key in ("slurm_user", "project_dir", "ssh_host"):
        response = patch_own_settings(client, headers, {key: "/x"})
        assert response.status_code == 422, key
        assert response.json == validation_error(["body", key], "extra fields not permitted", "value_error.extra")


# -- allowed viewer paths ------------------------------------------------------------


@pytest.fixture(scope="module")
def scheme_apps(environ):
    """One extra app per FRACTAL_VIEWER_AUTHORIZATION_SCHEME, on the same database."""
    apps = {}

    def get(scheme: str):
        if scheme not in apps:
            extra = {"FRACTAL_VIEWER_AUTHORIZATION_SCHEME": scheme}
            if scheme == "users-folders":
                extra["FRACTAL_VIEWER_BASE_FOLDER"] = "/viewer/base"
            apps[scheme] = create_app(environ={**environ, **extra})
        return apps[scheme]

    yield get
    for application in apps.values():
        with application.app_context():
            db.engine.dispose()


def viewer_paths(app, headers):
    response = app.test_client().get("/auth/current-user/allowed-viewer-paths/", headers=headers)
    assert response.status_code == 200
    return response.json


def configure(client, admin, user_id, *, settings=None, groups=()):
    """Give the user some settings and membership of new groups with these viewer paths."""
    if settings:
        assert client.patch(f"/auth/users/{user_id}/settings/", headers=admin, json=settings).status_code == 200
    for index, paths in enumerate(groups):
        group = client.post("/auth/group/", headers=admin, json={"name": f"g{index}", "viewer_paths": paths})
        assert client.post(f"/auth/group/{group.json['id']}/add-user/{user_id}/", headers=admin).status_code == 200


def test_viewer_paths_scheme_none_gives_nothing(app, client, admin, alice):
    user_id, headers = alice
    configure(client, admin, user_id, settings={"project_dir": "/p", "slurm_user": "u"}, groups=[["/g"]])
    assert viewer_paths(app, headers) == []


def test_viewer_paths_scheme_viewer_paths(scheme_apps, client, admin, alice):
    user_id, headers = alice
    configure(client, admin, user_id, settings={"project_dir": "/p"}, groups=[["/a", "/b"], ["/b", "/c"], []])
    client.post("/auth/group/", headers=admin, json={"name": "not-a-member", "viewer_paths": ["/z"]})
    paths = viewer_paths(scheme_apps("viewer-paths"), headers)
    assert paths[0] == "/p"
    assert sorted(paths[1:]) == ["/a", "/b", "/c"]


def test_viewer_paths_scheme_viewer_paths_without_project_dir(scheme_apps, client, admin, alice):
    user_id, headers = alice
    configure(client, admin, user_id, groups=[["/a"]])
    assert viewer_paths(scheme_apps("viewer-paths"), headers) == ["/a"]


def test_viewer_paths_scheme_users_folders(scheme_apps, client, admin, alice):
    user_id, headers = alice
    configure(client, admin, user_id, settings={"project_dir": "/p", "slurm_user": "bob"}, groups=[["/g"]])
    assert viewer_paths(scheme_apps("users-folders"), headers) == ["/p", "/viewer/base/bob"]


def test_viewer_paths_scheme_users_folders_without_settings(scheme_apps, client, admin, alice):
    user_id, headers = alice
    users_folders = scheme_apps("users-folders")
    assert viewer_paths(users_folders, headers) == []
    configure(client, admin, user_id, settings={"slurm_user": "bob"})
    assert viewer_paths(users_folders, headers) == ["/viewer/base/bob"]
