"""Section 0 of the API contract: URLs, error bodies, authentication, timestamps."""
from datetime import datetime, timezone

from flask import Blueprint
from pydantic import BaseModel, ConfigDict

from fractal_server.app import create_app
from fractal_server.auth.current_user import Access
from fractal_server.http.routing import endpoint
from fractal_server.http.timestamps import Timestamp


def test_alive(client):
    response = client.get("/api/alive/")
    assert response.status_code == 200
    assert response.json == {"alive": True, "version": "2.9.2"}


def test_missing_trailing_slash_is_redirected_with_307(client):
    for method in ("GET", "POST", "PATCH", "DELETE"):
        response = client.open("/api/alive?x=1", method=method)
        assert response.status_code == 307
        assert response.headers["location"].endswith("/api/alive/?x=1")


def test_unknown_path_and_method_have_json_bodies(client):
    response = client.get("/api/does-not-exist/")
    assert (response.status_code, response.json) == (404, {"detail": "Not Found"})
    response = client.post("/api/alive/")
    assert (response.status_code, response.json) == (405, {"detail": "Method Not Allowed"})


def test_settings_need_a_superuser(client, make_user, superuser):
    assert client.get("/api/settings/").status_code == 401
    assert client.get("/api/settings/", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    _, user_headers = make_user()
    response = client.get("/api/settings/", headers=user_headers)
    assert (response.status_code, response.json) == (403, {"detail": "Forbidden"})
    _, admin_headers = superuser
    response = client.get("/api/settings/", headers=admin_headers)
    assert response.status_code == 200
    settings = response.json
    for hidden in ("JWT_SECRET_KEY", "POSTGRES_DB", "PROJECT_NAME", "OAUTH_CLIENTS_CONFIG",
                   "FRACTAL_DEFAULT_ADMIN_PASSWORD", "COOKIE_EXPIRE_SECONDS"):
        assert settings[hidden] == "***"
    assert settings["FRACTAL_RUNNER_BACKEND"] == "local"
    assert settings["FRACTAL_TASKS_DIR"].endswith("/tasks")
    assert settings["FRACTAL_SLURM_CONFIG_FILE"] is None


def test_inactive_user_is_unauthorized(app, client, make_user):
    from fractal_server.db import db
    from fractal_server.db.models import User

    user_id, headers = make_user()
    with app.app_context():
        db.session.get(User, user_id).is_active = False
        db.session.commit()
    assert client.get("/api/settings/", headers=headers).status_code == 401


def test_cookie_transport(app, client, superuser):
    _, headers = superuser
    token = headers["Authorization"].removeprefix("Bearer ")
    client.set_cookie("fastapiusersauth", token)
    assert client.get("/api/settings/").status_code == 200


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    count: int = 0


class _Query(BaseModel):
    flag: bool = False


def test_authentication_comes_before_validation(environ, client, superuser):
    blueprint = Blueprint("probe", __name__, url_prefix="/probe")

    @endpoint(blueprint, "POST", "/thing/<thing_id>/", access=Access.SUPERUSER, body=_Body, query=_Query)
    def make_thing(user, thing_id, body, query):
        return {"id": thing_id, "name": body.name, "flag": query.flag}

    @endpoint(blueprint, "GET", "/time/", access=Access.ANONYMOUS, response=dict[str, Timestamp])
    def time():
        return {"naive": datetime(2026, 1, 2, 3, 4, 5), "aware": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)}

    test_app = create_app(environ=environ)
    test_app.register_blueprint(blueprint)
    probe = test_app.test_client()
    _, headers = superuser

    assert probe.post("/probe/thing/abc/", data="not json").status_code == 401
    response = probe.post("/probe/thing/abc/", json={"name": "x"}, headers=headers)
    assert response.status_code == 422
    assert response.json == {
        "detail": [{"loc": ["path", "thing_id"], "msg": "value is not a valid integer", "type": "type_error.integer"}]
    }
    response = probe.post("/probe/thing/1/", data="{bad", headers=headers, content_type="application/json")
    assert response.status_code == 422
    assert response.json["detail"][0]["type"] == "json_invalid"
    assert response.json["detail"][0]["loc"] == ["body", 1]
    response = probe.post("/probe/thing/1/", headers=headers)
    assert response.json == {"detail": [{"loc": ["body"], "msg": "field required", "type": "value_error.missing"}]}
    response = probe.post("/probe/thing/1/", json=[1], headers=headers)
    assert response.json == {"detail": [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}]}
    response = probe.post("/probe/thing/1/", json={"count": "x", "other": 1, "name": None}, headers=headers)
    assert response.json == {
        "detail": [
            {"loc": ["body", "name"], "msg": "none is not an allowed value", "type": "type_error.none.not_allowed"},
            {"loc": ["body", "count"], "msg": "value is not a valid integer", "type": "type_error.integer"},
            {"loc": ["body", "other"], "msg": "extra fields not permitted", "type": "value_error.extra"},
        ]
    }
    response = probe.post("/probe/thing/1/?flag=yes", json={"name": "n"}, headers=headers)
    assert (response.status_code, response.json) == (200, {"id": 1, "name": "n", "flag": True})
    response = probe.post("/probe/thing/1/?flag=maybe", json={"name": "n"}, headers=headers)
    assert response.json["detail"][0]["loc"] == ["query", "flag"]

    assert probe.get("/probe/time/").json == {
        "naive": "2026-01-02T03:04:05.000000+00:00",
        "aware": "2026-01-02T03:04:05.000006+00:00",
    }
