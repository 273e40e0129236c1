"""The test OpenID Connect provider, driven by a real OAuth 2 client.

The client side is Authlib's requests-based `OAuth2Session`; the browser
step is a plain `requests.get(..., allow_redirects=False)` whose `Location`
header carries the authorization code back, as a browser would follow it.
The client's id, secret and redirect URI are read from `provider.client`.
"""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.jwk import KeySet

from .provider import OIDCProvider

pytest_plugins = ["oidc.fixtures"]


# -- client-side helpers ----------------------------------------------------


def discover(provider) -> dict:
    response = requests.get(provider.discovery_url, timeout=5)
    assert response.status_code == 200
    return response.json()


def make_session(provider, **kwargs) -> OAuth2Session:
    client = provider.client
    options = dict(
        client_id=client.client_id,
        client_secret=client.client_secret,
        scope="openid email",
        redirect_uri=client.redirect_uris[0],
    )
    return OAuth2Session(**(options | kwargs))


def authorize(metadata: dict, session: OAuth2Session, **params) -> tuple[str, dict]:
    """Visit the authorization endpoint; return the redirect and its query."""
    url, _ = session.create_authorization_url(metadata["authorization_endpoint"], **params)
    response = requests.get(url, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    return location, query_of(location)


def query_of(url: str) -> dict:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def verify_id_token(id_token: str, metadata: dict, client_id: str, nonce: str) -> dict:
    """Check the signature against the published JWKS, then the claims."""
    jwks = requests.get(metadata["jwks_uri"], timeout=5).json()
    token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        nonce={"essential": True, "value": nonce},
    ).validate(token.claims)
    return token.claims


def fresh_code(provider) -> str:
    _, query = authorize(discover(provider), make_session(provider), state="st")
    return query["code"]


def token_request(provider, code: str, *, secret=None, redirect_uri=None, **extra):
    """A raw token request, authenticated with client_secret_basic."""
    client = provider.client
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri or client.redirect_uris[0],
        **extra,
    }
    auth = (client.client_id, secret or client.client_secret)
    return requests.post(provider.token_endpoint, data=form, auth=auth, timeout=5)


def last_request(provider, path: str):
    return [r for r in provider.requests if r.path == path][-1]


# -- discovery ----------------------------------------------------------------


def test_discovery_document(oidc_provider):
    metadata = discover(oidc_provider)
    OpenIDProviderMetadata(metadata).validate()
    assert metadata["issuer"] == oidc_provider.issuer
    assert oidc_provider.discovery_url.startswith("http://127.0.0.1:")
    assert metadata["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    keys = requests.get(metadata["jwks_uri"], timeout=5).json()["keys"]
    assert [key["kid"] for key in keys] == [oidc_provider.signing_key.kid]
    assert "d" not in keys[0]  # no private part published


# -- successful flows ---------------------------------------------------------


def test_code_flow_with_client_secret_basic(oidc_provider):
    oidc_provider.set_user(email="a@b.c", sub="123")
    client = oidc_provider.client
    metadata = discover(oidc_provider)
    session = make_session(oidc_provider)
    location, query = authorize(metadata, session, state="the-state", nonce="the-nonce")
    assert location.startswith(client.redirect_uris[0] + "?")
    assert query["state"] == "the-state"

    token = session.fetch_token(
        metadata["token_endpoint"], authorization_response=location, state="the-state"
    )
    assert token["token_type"].lower() == "bearer"
    claims = verify_id_token(token["id_token"], metadata, client.client_id, nonce="the-nonce")
    assert (claims["sub"], claims["email"], claims["email_verified"]) == ("123", "a@b.c", True)

    userinfo = session.get(metadata["userinfo_endpoint"], timeout=5)
    assert userinfo.json() == {"sub": "123", "email": "a@b.c", "email_verified": True}

    sent = last_request(oidc_provider, "/token")
    assert sent.headers["Authorization"].startswith("Basic ")
    assert "client_secret" not in sent.form


def test_code_flow_with_client_secret_post_and_pkce(oidc_provider):
    client = oidc_provider.client
    metadata = discover(oidc_provider)
    session = make_session(
        oidc_provider, token_endpoint_auth_method="client_secret_post", code_challenge_method="S256"
    )
    verifier = generate_token(48)
    location, _ = authorize(metadata, session, state="st", nonce="n1", code_verifier=verifier)
    token = session.fetch_token(
        metadata["token_endpoint"],
        authorization_response=location,
        state="st",
        code_verifier=verifier,
    )
    verify_id_token(token["id_token"], metadata, client.client_id, nonce="n1")

    sent = last_request(oidc_provider, "/token")
    assert sent.form["client_secret"] == client.client_secret
    assert sent.form["code_verifier"] == verifier
    assert "Authorization" not in sent.headers
    issued = oidc_provider.issued_codes[-1]
    assert issued.code_challenge_method == "S256" and issued.used


def test_signed_out_user_is_denied(oidc_provider):
    oidc_provider.sign_out()
    _, query = authorize(discover(oidc_provider), make_session(oidc_provider), state="st")
    assert (query["error"], query["state"]) == ("access_denied", "st")
    assert "code" not in query


# -- failures -----------------------------------------------------------------


def test_wrong_client_secret_with_basic_auth_is_unauthorized(oidc_provider):
    response = token_request(oidc_provider, fresh_code(oidc_provider), secret="wrong")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_wrong_client_secret_in_form_is_unauthorized(oidc_provider):
    client = oidc_provider.client
    form = {
        "grant_type": "authorization_code",
        "code": fresh_code(oidc_provider),
        "redirect_uri": client.redirect_uris[0],
        "client_id": client.client_id,
        "client_secret": "wrong",
    }
    response = requests.post(oidc_provider.token_endpoint, data=form, timeout=5)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_reused_code_is_rejected_and_revokes_its_tokens(oidc_provider):
    code = fresh_code(oidc_provider)
    first = token_request(oidc_provider, code)
    assert first.status_code == 200

    second = token_request(oidc_provider, code)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"

    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    userinfo = requests.get(oidc_provider.userinfo_endpoint, headers=bearer, timeout=5)
    assert userinfo.status_code == 401


def test_token_request_with_another_redirect_uri_is_rejected(oidc_provider):
    other = "http://127.0.0.1/other/callback"
    oidc_provider.add_redirect_uri(other)
    response = token_request(oidc_provider, fresh_code(oidc_provider), redirect_uri=other)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_unregistered_redirect_uri_gets_no_redirect(oidc_provider):
    session = make_session(oidc_provider, redirect_uri="http://evil.example/callback")
    url, _ = session.create_authorization_url(oidc_provider.authorization_endpoint, state="st")
    response = requests.get(url, allow_redirects=False, timeout=5)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.json()["error"] == "invalid_request"
    assert oidc_provider.issued_codes == []


def test_wrong_pkce_verifier_is_rejected(oidc_provider):
    session = make_session(oidc_provider, code_challenge_method="S256")
    verifier = generate_token(48)
    _, query = authorize(discover(oidc_provider), session, state="st", code_verifier=verifier)
    response = token_request(oidc_provider, query["code"], code_verifier=generate_token(48))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_userinfo_needs_a_valid_bearer_token(oidc_provider):
    url = oidc_provider.userinfo_endpoint
    assert requests.get(url, timeout=5).status_code == 401
    bogus = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bogus.status_code == 401
    assert bogus.json()["error"] == "invalid_token"


def test_provider_stops_cleanly(oidc_signing_key):
    provider = OIDCProvider("cid", "secret", ["http://127.0.0.1/cb"], signing_key=oidc_signing_key)
    with provider:
        url = provider.discovery_url
        assert requests.get(url, timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
