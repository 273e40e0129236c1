"""Logging in and out, and which tokens are accepted (`api-v2.md` 0.3 and 3)."""
import time

import jwt
import pytest

from fractal_server.db import db
from fractal_server.db.models import LinkUserGroup, User

from .helpers import (
    AUDIENCE,
    BAD_CREDENTIALS,
    UNAUTHORIZED,
    bearer,
    cookie_attributes,
    login,
    make_token,
    update_user,
    validation_error,
)

LOGIN_PATHS = ["/auth/token/login/", "/auth/login/"]
COOKIE = "fastapiusersauth"


def whoami(client, **kwargs):
    return client.get("/auth/current-user/", **kwargs)


# -- bearer login ------------------------------------------------------------


def test_token_login_answers_a_bearer_token(client, make_user):
    user_id, _ = make_user("alice@example.org", "secret")
    response = login(client, "alice@example.org", "secret")
    assert response.status_code == 200
    assert set(response.json) == {"access_token", "token_type"}
    assert response.json["token_type"] == "bearer"
    me = whoami(client, headers=bearer(response.json["access_token"]))
    assert (me.status_code, me.json["id"]) == (200, user_id)


def test_bearer_token_has_the_contract_payload(client, make_user, jwt_key):
    user_id, _ = make_user("alice@example.org", "secret")
    token = login(client, "alice@example.org", "secret").json["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, jwt_key, algorithms=["HS256"], audience=AUDIENCE)
    assert set(claims) == {"sub", "aud", "exp"}
    assert claims["sub"] == str(user_id)
    assert claims["aud"] == [AUDIENCE]
    assert abs(claims["exp"] - (time.time() + 180)) < 10  # JWT_EXPIRE_SECONDS


def test_email_is_matched_case_insensitively(client, make_user):
    make_user("Mixed.Case@Example.org", "secret")
    for path in LOGIN_PATHS:
        assert login(client, "mixed.case@EXAMPLE.ORG", "secret", path).status_code in (200, 204)


def test_unverified_user_can_log_in(client, make_user):
    make_user("alice@example.org", "secret", is_verified=False)
    assert login(client, "alice@example.org", "secret").status_code == 200


def test_optional_oauth2_form_fields_are_accepted(client, make_user):
    make_user("alice@example.org", "secret")
    extra = {"grant_type": "password", "scope": "", "client_id": "x", "client_secret": "y"}
    assert login(client, "alice@example.org", "secret", **extra).status_code == 200


@pytest.mark.parametrize("path", LOGIN_PATHS)
def test_unknown_email_is_bad_credentials(client, make_user, path):
    make_user("alice@example.org", "secret")
    response = login(client, "bob@example.org", "secret", path)
    assert (response.status_code, response.json) == (400, BAD_CREDENTIALS)


@pytest.mark.parametrize("path", LOGIN_PATHS)
def test_wrong_password_is_bad_credentials(client, make_user, path):
    make_user("alice@example.org", "secret")
    response = login(client, "alice@example.org", "Secret", path)
    assert (response.status_code, response.json) == (400, BAD_CREDENTIALS)
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("path", LOGIN_PATHS)
def test_inactive_user_is_bad_credentials(app, client, make_user, path):
    user_id, _ = make_user("alice@example.org", "secret")
    update_user(app, user_id, is_active=False)
    response = login(client, "alice@example.org", "secret", path)
    assert (response.status_code, response.json) == (400, BAD_CREDENTIALS)


@pytest.mark.parametrize("path", LOGIN_PATHS)
@pytest.mark.parametrize("missing", ["username", "password"])
def test_missing_form_field_is_422(client, path, missing):
    form = {"username": "alice@example.org", "password": "secret"}
    del form[missing]
    response = client.post(path, data=form)
    assert response.status_code == 422
    assert response.json == validation_error(["body", missing], "field required", "value_error.missing")


@pytest.mark.parametrize("empty", ["username", "password"])
def test_empty_form_field_counts_as_missing(client, make_user, empty):
    """As in the reference (FastAPI form parsing): `password=` is `field required`."""
    make_user("alice@example.org", "secret")
    form = {"username": "alice@example.org", "password": "secret", empty: ""}
    response = client.post("/auth/token/login/", data=form)
    assert response.status_code == 422
    assert response.json == validation_error(["body", empty], "field required", "value_error.missing")


# -- cookie login --------------------------------------------------------------


def test_cookie_login_sets_the_cookie(client, make_user, jwt_key):
    user_id, _ = make_user("alice@example.org", "secret")
    response = login(client, "alice@example.org", "secret", "/auth/login/")
    assert response.status_code == 204
    assert response.data == b""
    name, token, attributes = cookie_attributes(response.headers["set-cookie"])
    assert name == COOKIE
    assert {"httponly", "secure"} <= set(attributes)
    assert attributes["path"] == "/"
    assert attributes["samesite"].lower() == "none"
    assert "max-age" not in attributes and "expires" not in attributes
    claims = jwt.decode(token, jwt_key, algorithms=["HS256"], audience=AUDIENCE)
    assert claims["sub"] == str(user_id)
    assert abs(claims["exp"] - (time.time() + 86400)) < 10  # COOKIE_EXPIRE_SECONDS


def test_login_cookie_authenticates(client, make_user):
    user_id, _ = make_user("alice@example.org", "secret")
    response = login(client, "alice@example.org", "secret", "/auth/login/")
    _, token, _ = cookie_attributes(response.headers["set-cookie"])
    client.set_cookie(COOKIE, token)
    me = whoami(client)
    assert (me.status_code, me.json["id"]) == (200, user_id)


# -- logouts -------------------------------------------------------------------


def test_token_logout(client, make_user):
    _, headers = make_user()
    response = client.post("/auth/token/logout/", headers=headers)
    assert (response.status_code, response.data) == (204, b"")


def test_token_logout_accepts_the_cookie_transport(client, make_user):
    _, headers = make_user()
    client.set_cookie(COOKIE, headers["Authorization"].removeprefix("Bearer "))
    assert client.post("/auth/token/logout/").status_code == 204


def test_cookie_logout_clears_the_cookie(client, make_user):
    _, headers = make_user()
    response = client.post("/auth/logout/", headers=headers)
    assert (response.status_code, response.data) == (204, b"")
    name, value, attributes = cookie_attributes(response.headers["set-cookie"])
    assert (name, value) == (COOKIE, "")
    assert attributes["max-age"] == "0"
    assert {"httponly", "secure"} <= set(attributes)
    assert attributes["path"] == "/"
    assert attributes["samesite"].lower() == "none"


@pytest.mark.parametrize("path", ["/auth/token/logout/", "/auth/logout/"])
@pytest.mark.parametrize("headers", [{}, bearer("not-a-jwt")], ids=["no-token", "bad-token"])
def test_logout_needs_credentials(client, path, headers):
    response = client.post(path, headers=headers)
    assert (response.status_code, response.json) == (401, UNAUTHORIZED)


def test_tokens_still_work_after_logout(client, make_user):
    """Tokens cannot be revoked: logging out does nothing server-side."""
    _, headers = make_user()
    client.post("/auth/token/logout/", headers=headers)
    assert whoami(client, headers=headers).status_code == 200


def test_empty_answers_have_no_content_type(client, make_user, superuser):
    make_user("alice@example.org", "secret")
    _, admin = superuser
    answers = [
        login(client, "alice@example.org", "secret", "/auth/login/"),
        client.post("/auth/token/logout/", headers=admin),
        client.post("/auth/logout/", headers=admin),
        client.patch("/auth/group/1/user-settings/", headers=admin, json={}),
    ]
    assert [answer.headers.get("content-type") for answer in answers] == [None] * 4


# -- which tokens are accepted ---------------------------------------------------


def test_token_with_the_reference_payload_is_accepted(client, make_user, jwt_key):
    """A token as the reference server issues it (no `iat`, `jti`...) is valid."""
    user_id, _ = make_user()
    response = whoami(client, headers=bearer(make_token(jwt_key, sub=str(user_id))))
    assert (response.status_code, response.json["id"]) == (200, user_id)


@pytest.mark.parametrize(
    "token_args",
    [
        {"key": "another-secret-key-that-is-long-enough-for-hs256"},
        {"audience": "another-audience"},
        {"lifetime": -60},
        {"sub": "not-an-integer"},
    ],
    ids=["other-key", "other-audience", "expired", "bad-sub"],
)
def test_invalid_token_is_unauthorized(client, make_user, jwt_key, token_args):
    user_id, _ = make_user()
    token = make_token(**{"key": jwt_key, "sub": str(user_id), **token_args})
    response = whoami(client, headers=bearer(token))
    assert (response.status_code, response.json) == (401, UNAUTHORIZED)


def test_unsigned_token_is_unauthorized(client, make_user):
    user_id, _ = make_user()
    token = jwt.encode({"sub": str(user_id), "aud": [AUDIENCE]}, None, algorithm="none")
    assert whoami(client, headers=bearer(token)).status_code == 401


def test_token_of_a_deleted_user_is_unauthorized(app, client, make_user):
    user_id, headers = make_user()
    with app.app_context():
        db.session.query(LinkUserGroup).filter_by(user_id=user_id).delete()
        db.session.delete(db.session.get(User, user_id))
        db.session.commit()
    response = whoami(client, headers=headers)
    assert (response.status_code, response.json) == (401, UNAUTHORIZED)


def test_token_of_an_unknown_user_is_unauthorized(client, jwt_key):
    response = whoami(client, headers=bearer(make_token(jwt_key, sub="999")))
    assert (response.status_code, response.json) == (401, UNAUTHORIZED)


def test_token_of_an_inactive_user_is_unauthorized(app, client, make_user):
    user_id, headers = make_user()
    update_user(app, user_id, is_active=False)
    response = whoami(client, headers=headers)
    assert (response.status_code, response.json) == (401, UNAUTHORIZED)


def test_cookie_is_tried_after_an_invalid_bearer_token(client, make_user):
    user_id, headers = make_user()
    client.set_cookie(COOKIE, headers["Authorization"].removeprefix("Bearer "))
    response = whoami(client, headers=bearer("not-a-jwt"))
    assert (response.status_code, response.json["id"]) == (200, user_id)


def test_invalid_cookie_is_unauthorized(client):
    client.set_cookie(COOKIE, "not-a-jwt")
    assert whoami(client).status_code == 401
