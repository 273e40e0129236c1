"""A minimal but real OpenID Connect provider, for tests.

Tests of the OAuth/OIDC login need an identity provider to talk to. Instead
of mocking HTTP calls, this module runs an actual provider on loopback
(127.0.0.1, a free port) in a background thread, so the code under test goes
through the whole protocol over real HTTP:

* ``/.well-known/openid-configuration``: the discovery document;
* ``/jwks``: the public RSA key that signs ID tokens;
* ``/authorize``: the authorization endpoint (authorization code flow). There
  is no browser in tests, so it approves every valid request on behalf of the
  "current end user" (see ``OIDCProvider.set_user``) and redirects to the
  client's ``redirect_uri`` with ``code`` and ``state``;
* ``/token``: exchanges a code for an access token and a signed ID token.
  It authenticates the client with ``client_secret_basic`` or
  ``client_secret_post``, checks the ``redirect_uri``, accepts each code only
  once and verifies PKCE when the authorization request used it;
* ``/userinfo``: returns the end user's claims for a bearer access token.

The protocol work is done by Authlib's server side; this module supplies the
in-memory storage (one client, codes, tokens) and the Flask routes.

Usage::

    with OIDCProvider("cid", "csecret", ["http://127.0.0.1:8000/cb"]) as provider:
        provider.set_user(email="a@b.c", sub="123")
        ... point the code under test at provider.discovery_url ...
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin, scope_to_list
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo, UserInfoEndpoint
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from flask import Flask, jsonify, request
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import WSGIRequestHandler, make_server

SCOPES = ["openid", "email", "profile"]
TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
SIGNING_ALG = "RS256"
CLAIMS = ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "email", "email_verified"]
CODE_LIFETIME = 600  # seconds
ACCESS_TOKEN_LIFETIME = 3600  # seconds


def generate_signing_key() -> RSAKey:
    """A fresh 2048-bit RSA key for signing ID tokens."""
    return RSAKey.generate_key(2048, parameters={"use": "sig", "alg": SIGNING_ALG}, auto_kid=True)


def default_sub(email: str) -> str:
    """A stable subject identifier derived from an e-mail address."""
    return hashlib.sha256(email.encode()).hexdigest()[:24]


@dataclass
class EndUser:
    """The person who "logs in" at the provider."""

    email: str
    sub: str
    email_verified: bool = True

    def claims(self, scope: str) -> UserInfo:
        """The standard claims this user discloses for `scope`."""
        info = UserInfo(sub=self.sub, email=self.email, email_verified=self.email_verified)
        return info.filter(scope)


@dataclass
class RecordedRequest:
    """One HTTP request received by the provider."""

    method: str
    path: str
    args: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class Client(ClientMixin):
    """The single registered (confidential) relying party."""

    client_id: str
    client_secret: str
    redirect_uris: list[str]
    client_metadata: dict = field(default_factory=dict)

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope):
        return " ".join(s for s in scope_to_list(scope or "") if s in SCOPES)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return endpoint == "token" and method in TOKEN_AUTH_METHODS

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    """An issued authorization code and what it was issued for."""

    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    user: EndUser
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    auth_time: int = field(default_factory=lambda: int(time.time()))
    used: bool = False

    def is_expired(self) -> bool:
        return time.time() > self.auth_time + CODE_LIFETIME

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time


@dataclass
class Token(TokenMixin):
    """An issued access token."""

    access_token: str
    client: Client
    user: EndUser
    scope: str
    code: AuthorizationCode
    expires_in: int = ACCESS_TOKEN_LIFETIME
    issued_at: int = field(default_factory=lambda: int(time.time()))
    revoked: bool = False

    def check_client(self, client):
        return client.client_id == self.client.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return self.expires_in

    def is_expired(self):
        return time.time() > self.issued_at + self.expires_in

    def is_revoked(self):
        return self.revoked

    def get_user(self):
        return self.user

    def get_client(self):
        return self.client


class _Server(AuthorizationServer):
    """Authlib's authorization server, with a link back to our provider."""

    provider: OIDCProvider


class _CodeGrant(AuthorizationCodeGrant):
    """The authorization code grant, storing codes in the provider."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def save_authorization_code(self, code, request):
        data = request.payload.data
        record = AuthorizationCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            user=request.user,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
        )
        self.server.provider.issued_codes.append(record)

    def query_authorization_code(self, code, client):
        record = self.server.provider.find_code(code)
        if record is None or record.client_id != client.client_id or record.is_expired():
            return None
        if record.used:
            # RFC 6749 section 4.1.2: a reused code revokes what it gave.
            self.server.provider.revoke_tokens_of(record)
            return None
        return record

    def delete_authorization_code(self, authorization_code):
        authorization_code.used = True

    def authenticate_user(self, authorization_code):
        return authorization_code.user


class _OpenIDCode(OpenIDCode):
    """Adds a signed ID token to the token response of `openid` requests."""

    def __init__(self, provider: OIDCProvider):
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce, request):
        client_id = request.payload.client_id
        return any(
            c.nonce == nonce and c.client_id == client_id for c in self.provider.issued_codes
        )

    def resolve_client_private_key(self, client):
        return self.provider.signing_key

    def get_client_algorithm(self, client):
        return SIGNING_ALG

    def get_encode_header(self, client):
        return {"alg": SIGNING_ALG, "kid": self.provider.signing_key.kid}

    def get_client_claims(self, client):
        return {"iss": self.provider.issuer, "aud": client.client_id}

    def generate_user_info(self, user, scope):
        return user.claims(scope)


class _BearerValidator(BearerTokenValidator):
    """Looks bearer tokens up among the tokens the provider issued."""

    def __init__(self, provider: OIDCProvider):
        super().__init__()
        self.provider = provider

    def authenticate_token(self, token_string):
        return self.provider.find_token(token_string)


class _UserInfo(UserInfoEndpoint):
    def generate_user_info(self, user, scope):
        return user.claims(scope)


class _QuietHandler(WSGIRequestHandler):
    """Do not print one access-log line per request."""

    def log_request(self, *args, **kwargs):
        pass


class OIDCProvider:
    """An OpenID Connect provider on http://127.0.0.1:<port>, for one client.

    Start it with `start()` or a `with` block; stop it with `stop()`.
    The end user who "logs in" is set with `set_user()`; after
    `sign_out()`, authorization requests are answered with `access_denied`
    (or `login_required` for `prompt=none`).
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: list[str],
        *,
        signing_key: RSAKey | None = None,
        user: EndUser | None = None,
    ):
        self.client = Client(client_id, client_secret, list(redirect_uris))
        self.signing_key = signing_key or generate_signing_key()
        self.user = user or EndUser(email="user@example.org", sub="oidc-user-1")
        self.issued_codes: list[AuthorizationCode] = []
        self.issued_tokens: list[Token] = []
        self.requests: list[RecordedRequest] = []
        self.app = self._create_app()
        self._http_server = None
        self._thread = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> OIDCProvider:
        self._http_server = make_server(
            "127.0.0.1", 0, self.app, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._http_server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so that stop() returns quickly
            name="oidc-provider",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._http_server is None:
            return
        self._http_server.shutdown()
        self._thread.join()
        self._http_server.server_close()
        self._http_server = self._thread = None

    def __enter__(self) -> OIDCProvider:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------

    @property
    def issuer(self) -> str:
        if self._http_server is None:
            raise RuntimeError("the OIDC provider is not running")
        return f"http://127.0.0.1:{self._http_server.server_port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @property
    def userinfo_endpoint(self) -> str:
        return f"{self.issuer}/userinfo"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    # -- test controls -----------------------------------------------------

    def set_user(self, email: str, sub: str | None = None, *, email_verified: bool = True):
        """Make `email` the end user who approves the next authorizations."""
        sub = sub or default_sub(email)
        self.user = EndUser(email=email, sub=sub, email_verified=email_verified)
        return self.user

    def sign_out(self) -> None:
        """No end user: authorization requests are denied from now on."""
        self.user = None

    def add_redirect_uri(self, uri: str) -> None:
        """Register one more redirect URI for the client."""
        self.client.redirect_uris.append(uri)

    def public_jwks(self) -> dict:
        return KeySet([self.signing_key]).as_dict(private=False)

    def discovery_document(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "userinfo_endpoint": self.userinfo_endpoint,
            "jwks_uri": self.jwks_uri,
            "scopes_supported": SCOPES,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [SIGNING_ALG],
            "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
            "code_challenge_methods_supported": ["S256", "plain"],
            "claims_supported": CLAIMS,
        }

    # -- storage lookups (used by the Authlib glue above) ------------------

    def find_code(self, code: str) -> AuthorizationCode | None:
        return next((c for c in self.issued_codes if c.code == code), None)

    def find_token(self, access_token: str) -> Token | None:
        return next((t for t in self.issued_tokens if t.access_token == access_token), None)

    def revoke_tokens_of(self, code: AuthorizationCode) -> None:
        for token in self.issued_tokens:
            if token.code is code:
                token.revoked = True

    def _save_token(self, token: dict, oauth_request) -> None:
        self.issued_tokens.append(
            Token(
                access_token=token["access_token"],
                client=oauth_request.client,
                user=oauth_request.user,
                scope=token.get("scope", ""),
                code=oauth_request.authorization_code,
                expires_in=token["expires_in"],
            )
        )

    def _query_client(self, client_id: str) -> Client | None:
        return self.client if client_id == self.client.client_id else None

    # -- the Flask application ---------------------------------------------

    def _create_app(self) -> Flask:
        app = Flask("oidc_test_provider")
        app.config["OAUTH2_SCOPES_SUPPORTED"] = SCOPES
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": ACCESS_TOKEN_LIFETIME}
        server = self._create_authorization_server(app)
        app.before_request(self._record_request)

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify(self.discovery_document())

        @app.get("/jwks")
        def jwks():
            return jsonify(self.public_jwks())

        @app.get("/authorize")
        def authorize():
            return self._authorize(server)

        @app.post("/token")
        def token():
            return server.create_token_response()

        @app.route("/userinfo", methods=["GET", "POST"])
        def userinfo():
            return server.create_endpoint_response("userinfo")

        return app

    def _create_authorization_server(self, app: Flask) -> _Server:
        """Authlib's server: code grant + OpenID + PKCE, and the userinfo endpoint."""
        server = _Server(app, query_client=self._query_client, save_token=self._save_token)
        server.provider = self
        server.register_grant(_CodeGrant, [_OpenIDCode(self), CodeChallenge(required=True)])
        protector = ResourceProtector()
        protector.register_token_validator(_BearerValidator(self))
        server.register_endpoint(_UserInfo(resource_protector=protector))
        return server

    def _record_request(self) -> None:
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                args=request.args.to_dict(),
                form=request.form.to_dict(),
                headers=dict(request.headers),
            )
        )

    def _authorize(self, server: _Server):
        """Validate the request, then approve it as the current end user."""
        user = self.user
        try:
            grant = server.get_consent_grant(end_user=user)
        except OAuth2Error as error:
            # Redirects back with `error` when the redirect_uri is trusted,
            # otherwise answers 400 here (RFC 6749 section 4.1.2.1).
            return server.handle_error_response(None, error)
        return server.create_authorization_response(grant_user=user, grant=grant)
