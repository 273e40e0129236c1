"""Login through an OAuth2 / OpenID Connect provider (`OAUTH_<NAME>_*`).

The provider is the real OpenID Connect provider of `tests/oidc`, running on
loopback; our server talks to it over HTTP. The "browser" is `requests` with
`allow_redirects=False`: it visits the authorization URL and reads the
provider's redirect back to our callback.
"""
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from servers import Deployment, free_port

from fractal_server.app import create_app
from fractal_server.config.errors import FractalConfigurationError
from fractal_server.db import db
from fractal_server.db.models import User

pytest_plugins = ["oidc.fixtures"]

COOKIE_NAME = "fastapiusersauth"
PROVIDER = "loopback"
CALLBACK_PATH = f"/auth/{PROVIDER}/callback/"
TEST_CLIENT_REDIRECT_URL = f"http://localhost{CALLBACK_PATH}"


# -- helpers -----------------------------------------------------------------


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **changes) -> str:
    """`url` with some query parameters replaced (a value of None removes one)."""
    parts = urlsplit(url)
    query = {**query_of(url), **changes}
    query = {key: value for key, value in query.items() if value is not None}
    return parts._replace(query=urlencode(query)).geturl()


def visit_provider(authorization_url: str) -> str:
    """What a browser does at the provider: return where it is sent back to."""
    response = requests.get(authorization_url, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def oauth_env(name: str, provider, redirect_url: str | None = None, **changes) -> dict[str, str]:
    """The `OAUTH_<NAME>_*` variables of a client registered with `provider`."""
    variables = {
        f"OAUTH_{name}_CLIENT_ID": provider.client.client_id,
        f"OAUTH_{name}_CLIENT_SECRET": provider.client.client_secret,
        f"OAUTH_{name}_OIDC_CONFIGURATION_ENDPOINT": provider.discovery_url,
    }
    if redirect_url:
        variables[f"OAUTH_{name}_REDIRECT_URL"] = redirect_url
    return {**variables, **changes}


def login_cookie(set_cookie_headers: list[str]) -> str:
    """The value of the login cookie among `Set-Cookie` headers."""
    (header,) = [h for h in set_cookie_headers if h.startswith(f"{COOKIE_NAME}=")]
    return header.split(";")[0].split("=", 1)[1]


def token_exchanges(provider) -> int:
    return sum(1 for r in provider.requests if r.path == "/token")


# -- fixtures ----------------------------------------------------------------


@pytest.fixture
def oauth_app(client, environ, oidc_provider):
    """An app with the OAuth client LOOPBACK, on a clean database.

    The redirect URL is the callback as the Flask test client sees it.
    """
    oidc_provider.add_redirect_uri(TEST_CLIENT_REDIRECT_URL)
    variables = oauth_env("LOOPBACK", oidc_provider, TEST_CLIENT_REDIRECT_URL)
    return create_app(environ={**environ, **variables})


@pytest.fixture
def oauth_client(oauth_app):
    return oauth_app.test_client()


@pytest.fixture
def start_login(oauth_client):
    """Start a login at our app and approve it at the provider.

    Returns the callback URL (path and query) that the browser would visit.
    """

    def start() -> str:
        response = oauth_client.get(f"/auth/{PROVIDER}/authorize/")
        assert response.status_code == 200, response.json
        callback = urlsplit(visit_provider(response.json["authorization_url"]))
        return f"{callback.path}?{callback.query}"

    return start


@pytest.fixture
def users_count(app, client):
    """The number of users in the database."""

    def count() -> int:
        with app.app_context():
            return db.session.query(User).count()

    return count


# -- 1. end to end, with a real server process -------------------------------


@pytest.fixture
def oauth_server(client, environ, oidc_provider, tmp_path):
    """`fractalctl start` with the OAuth client LOOPBACK (clean, upgraded database)."""
    port = free_port()
    redirect_url = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
    oidc_provider.add_redirect_uri(redirect_url)
    variables = oauth_env("LOOPBACK", oidc_provider, redirect_url)
    with Deployment(tmp_path, environ["POSTGRES_DB"], **variables) as deployment:
        yield deployment.start(port=port)


def login_through_server(server) -> requests.Response:
    """The whole browser flow; returns the response of our callback."""
    response = requests.get(f"{server.url}/auth/{PROVIDER}/authorize/", timeout=10)
    assert response.status_code == 200, response.text
    authorization_url = response.json()["authorization_url"]
    location = visit_provider(authorization_url)
    assert location.startswith(f"{server.url}{CALLBACK_PATH}?")
    return requests.get(location, allow_redirects=False, timeout=10)


def test_login_end_to_end_with_a_real_server(oauth_server, oidc_provider):
    oidc_provider.set_user(email="Alice@Example.org", sub="alice-1")

    # The authorization URL points at the provider, for our client and callback.
    response = requests.get(f"{oauth_server.url}/auth/{PROVIDER}/authorize/", timeout=10)
    assert response.status_code == 200
    assert list(response.json()) == ["authorization_url"]
    authorization_url = response.json()["authorization_url"]
    assert authorization_url.startswith(f"{oidc_provider.authorization_endpoint}?")
    query = query_of(authorization_url)
    assert query["client_id"] == oidc_provider.client.client_id
    assert query["redirect_uri"] == f"{oauth_server.url}{CALLBACK_PATH}"
    assert query["response_type"] == "code"
    assert query["state"]

    # The provider sends the browser back to our callback with a code and the state.
    location = visit_provider(authorization_url)
    assert location.startswith(f"{oauth_server.url}{CALLBACK_PATH}?")
    back = query_of(location)
    assert back["state"] == query["state"]
    assert back["code"] == oidc_provider.issued_codes[-1].code

    # Our callback exchanges the code and logs the user in with the cookie.
    response = requests.get(location, allow_redirects=False, timeout=10)
    assert response.status_code == 204, response.text
    assert response.content == b""
    set_cookie = response.headers["Set-Cookie"]
    assert set_cookie.startswith(f"{COOKIE_NAME}=")
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite", "path"} <= attributes
    assert "samesite=none" in set_cookie.lower()
    assert oidc_provider.issued_codes[-1].used
    assert token_exchanges(oidc_provider) == 1

    # The cookie authenticates (it is `Secure`, so send it explicitly over http).
    cookie = {"Cookie": f"{COOKIE_NAME}={login_cookie([set_cookie])}"}
    response = requests.get(
        f"{oauth_server.url}/auth/current-user/?group_ids_names=true", headers=cookie, timeout=10
    )
    assert response.status_code == 200, response.text
    user = response.json()
    assert user["email"] == "Alice@Example.org"
    assert user["is_active"] is True
    assert user["is_verified"] is False
    assert user["is_superuser"] is False
    assert [(a["oauth_name"], a["account_email"]) for a in user["oauth_accounts"]] == [
        (PROVIDER, "Alice@Example.org")
    ]
    assert [name for _, name in user["group_ids_names"]] == ["All"]
    response = requests.get(f"{oauth_server.url}/auth/current-user/settings/", headers=cookie, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "slurm_user": None,
        "slurm_accounts": [],
        "ssh_username": None,
        "project_dir": None,
    }

    # A second login of the same person reuses the same user and account.
    response = login_through_server(oauth_server)
    assert response.status_code == 204, response.text
    cookie = {"Cookie": f"{COOKIE_NAME}={login_cookie([response.headers['Set-Cookie']])}"}
    again = requests.get(f"{oauth_server.url}/auth/current-user/", headers=cookie, timeout=10).json()
    assert again["id"] == user["id"]
    assert len(again["oauth_accounts"]) == 1
    assert again["oauth_accounts"][0]["id"] == user["oauth_accounts"][0]["id"]


# -- 2. error cases (Flask test client, real provider) ------------------------


def test_login_with_the_test_client(oauth_client, start_login, oidc_provider, users_count):
    """The baseline for the error cases below: the same flow succeeds."""
    oidc_provider.set_user(email="bob@example.org")
    before = users_count()
    response = oauth_client.get(start_login())
    assert response.status_code == 204, response.json
    assert login_cookie(response.headers.getlist("Set-Cookie"))
    assert users_count() == before + 1


def tamper(state: str) -> str:
    """Change one character of the signature."""
    head, last = state[:-2], state[-2]
    return head + ("A" if last != "A" else "B") + state[-1]


def forge_state(key: str, provider: str) -> str:
    """A state like ours, but signed with `key`."""
    payload = {"aud": "fastapi-users:oauth-state", "provider": provider, "exp": 2**31}
    return jwt.encode(payload, key, algorithm="HS256")


@pytest.mark.parametrize("case", ["tampered", "other-provider", "other-key", "missing"])
def test_state_mismatch_is_rejected(case, environ, oidc_provider, users_count):
    # Two clients on the same provider: a state issued for OTHER must not
    # be accepted by the callback of LOOPBACK.
    oidc_provider.add_redirect_uri(TEST_CLIENT_REDIRECT_URL)
    app = create_app(
        environ={
            **environ,
            **oauth_env("LOOPBACK", oidc_provider, TEST_CLIENT_REDIRECT_URL),
            **oauth_env("OTHER", oidc_provider, TEST_CLIENT_REDIRECT_URL),
        }
    )
    test_client = app.test_client()
    oidc_provider.set_user(email="mallory@example.org")
    before = users_count()

    authorization_url = test_client.get(f"/auth/{PROVIDER}/authorize/").json["authorization_url"]
    callback = urlsplit(visit_provider(authorization_url))
    url = f"{callback.path}?{callback.query}"
    state = query_of(url)["state"]
    if case == "tampered":
        url = with_query(url, state=tamper(state))
    elif case == "other-provider":
        other_url = test_client.get("/auth/other/authorize/").json["authorization_url"]
        url = with_query(url, state=query_of(other_url)["state"])
    elif case == "other-key":
        url = with_query(url, state=forge_state("another-secret-key-of-enough-length!", PROVIDER))
    elif case == "missing":
        url = with_query(url, state=None)

    response = test_client.get(url)
    assert response.status_code == 400, response.json
    assert "Set-Cookie" not in response.headers
    assert token_exchanges(oidc_provider) == 0  # the code was never used
    assert users_count() == before


def test_forged_state_with_our_key_but_other_provider(oauth_client, start_login, environ, users_count):
    """The state is bound to the provider even when its signature is valid."""
    url = with_query(start_login(), state=forge_state(environ["JWT_SECRET_KEY"], "other"))
    before = users_count()
    response = oauth_client.get(url)
    assert response.status_code == 400
    assert "Set-Cookie" not in response.headers
    assert users_count() == before


def test_existing_email_is_linked_to_the_local_user(
    oauth_client, start_login, oidc_provider, make_user, users_count
):
    user_id, headers = make_user("carol@example.org", "carol-password")
    oidc_provider.set_user(email="CAROL@example.org", sub="carol-at-provider")
    before = users_count()

    response = oauth_client.get(start_login())
    assert response.status_code == 204, response.json
    assert users_count() == before

    cookie = {"Cookie": f"{COOKIE_NAME}={login_cookie(response.headers.getlist('Set-Cookie'))}"}
    user = oauth_client.get("/auth/current-user/", headers=cookie).json
    assert user["id"] == user_id
    assert user["email"] == "carol@example.org"
    assert [(a["oauth_name"], a["account_email"]) for a in user["oauth_accounts"]] == [
        (PROVIDER, "CAROL@example.org")
    ]

    # The password still works.
    response = oauth_client.post(
        "/auth/token/login/", data={"username": "carol@example.org", "password": "carol-password"}
    )
    assert response.status_code == 200
    response = oauth_client.get(
        "/auth/current-user/", headers={"Authorization": f"Bearer {response.json['access_token']}"}
    )
    assert response.json["id"] == user_id


def test_provider_error_is_rejected(oauth_client, oidc_provider, users_count):
    before = users_count()
    oidc_provider.sign_out()
    authorization_url = oauth_client.get(f"/auth/{PROVIDER}/authorize/").json["authorization_url"]
    callback = urlsplit(visit_provider(authorization_url))
    assert query_of(callback.geturl())["error"] == "access_denied"

    response = oauth_client.get(f"{callback.path}?{callback.query}")
    assert response.status_code == 400
    assert "Set-Cookie" not in response.headers
    assert token_exchanges(oidc_provider) == 0
    assert users_count() == before


def test_wrong_client_secret_is_rejected(client, environ, oidc_provider, users_count):
    oidc_provider.add_redirect_uri(TEST_CLIENT_REDIRECT_URL)
    variables = oauth_env(
        "LOOPBACK",
        oidc_provider,
        TEST_CLIENT_REDIRECT_URL,
        OAUTH_LOOPBACK_CLIENT_SECRET="not-the-secret",
    )
    test_client = create_app(environ={**environ, **variables}).test_client()
    before = users_count()

    authorization_url = test_client.get(f"/auth/{PROVIDER}/authorize/").json["authorization_url"]
    callback = urlsplit(visit_provider(authorization_url))
    response = test_client.get(f"{callback.path}?{callback.query}")
    assert response.status_code == 400
    assert "Set-Cookie" not in response.headers
    assert token_exchanges(oidc_provider) == 1  # tried, and refused by the provider
    assert users_count() == before


def test_inactive_user_cannot_log_in(
    oauth_client, start_login, oidc_provider, make_user, superuser
):
    user_id, _ = make_user("dave@example.org")
    _, admin = superuser
    response = oauth_client.patch(f"/auth/users/{user_id}/", headers=admin, json={"is_active": False})
    assert response.status_code == 200, response.json
    oidc_provider.set_user(email="dave@example.org")

    response = oauth_client.get(start_login())
    assert response.status_code == 400
    assert response.json == {"detail": "LOGIN_BAD_CREDENTIALS"}
    assert "Set-Cookie" not in response.headers


def test_callback_without_code_is_rejected(oauth_client, start_login):
    response = oauth_client.get(with_query(start_login(), code=None))
    assert response.status_code == 400
    assert "Set-Cookie" not in response.headers


def test_expired_state_is_rejected(oauth_client, start_login, environ, oidc_provider):
    expired = jwt.encode(
        {"aud": "fastapi-users:oauth-state", "provider": PROVIDER, "exp": 1},
        environ["JWT_SECRET_KEY"],
        algorithm="HS256",
    )
    response = oauth_client.get(with_query(start_login(), state=expired))
    assert response.status_code == 400
    assert "Set-Cookie" not in response.headers
    assert token_exchanges(oidc_provider) == 0


def test_replayed_callback_is_rejected(oauth_client, start_login, oidc_provider):
    """The provider accepts each code once: the second visit gets no cookie."""
    url = start_login()
    assert oauth_client.get(url).status_code == 204
    response = oauth_client.get(url)
    assert response.status_code == 400
    assert "Set-Cookie" not in response.headers


# -- 3. settings rules ---------------------------------------------------------


def test_oidc_endpoint_is_required_for_other_providers(environ):
    variables = {"OAUTH_FOO_CLIENT_ID": "id", "OAUTH_FOO_CLIENT_SECRET": "secret"}
    with pytest.raises(FractalConfigurationError, match="Missing OAUTH_FOO_OIDC_CONFIGURATION_ENDPOINT"):
        create_app(environ={**environ, **variables})


def test_github_and_google_need_no_endpoint(environ):
    variables = {
        "OAUTH_GITHUB_CLIENT_ID": "gh-id",
        "OAUTH_GITHUB_CLIENT_SECRET": "gh-secret",
        "OAUTH_GOOGLE_CLIENT_ID": "g-id",
        "OAUTH_GOOGLE_CLIENT_SECRET": "g-secret",
    }
    app = create_app(environ={**environ, **variables})
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    for name in ("github", "google"):
        assert f"/auth/{name}/authorize/" in rules
        assert f"/auth/{name}/callback/" in rules


def test_without_oauth_variables_there_are_no_oauth_routes(environ):
    rules = {rule.rule for rule in create_app(environ=environ).url_map.iter_rules()}
    assert not [rule for rule in rules if rule.endswith("/authorize/")]


def test_unverified_provider_email_is_rejected(oauth_client, start_login, oidc_provider, users_count):
    before = users_count()
    oidc_provider.set_user(email="unverified@example.org", email_verified=False)
    response = oauth_client.get(start_login())
    assert (response.status_code, response.json) == (400, {"detail": "OAUTH_NOT_AVAILABLE_EMAIL"})
    assert "Set-Cookie" not in response.headers
    assert users_count() == before


def test_unreachable_provider_gives_503(client, environ):
    app = create_app(
        environ={
            **environ,
            "OAUTH_DOWN_CLIENT_ID": "id",
            "OAUTH_DOWN_CLIENT_SECRET": "secret",
            "OAUTH_DOWN_OIDC_CONFIGURATION_ENDPOINT": "http://127.0.0.1:9/.well-known/openid-configuration",
        }
    )
    response = app.test_client().get("/auth/down/authorize/")
    assert response.status_code == 503
    assert response.json == {"detail": "OAuth provider 'down' is not reachable."}
