"""The built-in OAuth2 / OpenID Connect auth providers, one per `OAUTH_<NAME>_*`.

    GET /auth/<name>/authorize/  -> {"authorization_url": ...}
    GET /auth/<name>/callback/   -> 204 and the login cookie

The `state` parameter is a short-lived JWT signed with `JWT_SECRET_KEY` and
bound to the provider, so the flow needs no server-side session. A first
login creates an unverified user (member of `All`); a later login with the
same e-mail reuses that user and links the provider account to it.
"""
import logging
import secrets
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Optional

import jwt
import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from flask import Blueprint, url_for
from pydantic import BaseModel

from fractal_server.auth.accounts import create_user, find_user_by_email
from fractal_server.auth.current_user import Access
from fractal_server.auth.password_login import set_login_cookie
from fractal_server.auth.providers import AuthProvider
from fractal_server.config.settings import OAuthClientConfig
from fractal_server.db import db
from fractal_server.db.models import OAuthAccount, User
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import empty_response, endpoint
from fractal_server.plugins import hookimpl
from fractal_server.server_state import current_settings

logger = logging.getLogger("fractal_server.auth")

STATE_AUDIENCE = "fastapi-users:oauth-state"
STATE_LIFETIME = timedelta(hours=1)
HTTP_TIMEOUT = 10
SCOPES = {"GITHUB": "user:email", "DEFAULT": "openid email profile"}
WELL_KNOWN_ENDPOINTS = {
    "GOOGLE": {"discovery": "https://accounts.google.com/.well-known/openid-configuration"},
    "GITHUB": {
        "authorization_endpoint": "https://github.com/login/oauth/authorize",
        "token_endpoint": "https://github.com/login/oauth/access_token",
        "userinfo_endpoint": "https://api.github.com/user",
    },
}


class AuthorizationURL(BaseModel):
    authorization_url: str


class CallbackQuery(BaseModel):
    code: Optional[str] = None
    state: Optional[str] = None
    error: Optional[str] = None


class _Endpoints:
    """The provider's endpoints, discovered on first use and then kept."""

    def __init__(self, client: OAuthClientConfig):
        self.client = client
        self._known: Optional[dict] = None

    def get(self) -> dict:
        if self._known is None:
            fixed = WELL_KNOWN_ENDPOINTS.get(self.client.CLIENT_NAME, {})
            discovery = self.client.OIDC_CONFIGURATION_ENDPOINT or fixed.get("discovery")
            if discovery:
                response = requests.get(discovery, timeout=HTTP_TIMEOUT)
                response.raise_for_status()
                self._known = response.json()
            else:
                self._known = fixed
        return self._known


def _session(client: OAuthClientConfig, redirect_uri: str) -> OAuth2Session:
    return OAuth2Session(
        client.CLIENT_ID,
        client.CLIENT_SECRET,
        scope=SCOPES.get(client.CLIENT_NAME, SCOPES["DEFAULT"]),
        redirect_uri=redirect_uri,
    )


def _make_state(provider: str) -> str:
    payload = {
        "aud": STATE_AUDIENCE,
        "provider": provider,
        "nonce": secrets.token_urlsafe(16),
        "exp": datetime.now(tz=timezone.utc) + STATE_LIFETIME,
    }
    return jwt.encode(payload, current_settings().JWT_SECRET_KEY, algorithm="HS256")


def _check_state(state: Optional[str], provider: str) -> None:
    try:
        claims = jwt.decode(
            state or "",
            current_settings().JWT_SECRET_KEY,
            algorithms=["HS256"],
            audience=STATE_AUDIENCE,
        )
    except jwt.PyJWTError:
        raise ApiError(400, "OAUTH_INVALID_STATE") from None
    if claims.get("provider") != provider:
        raise ApiError(400, "OAUTH_INVALID_STATE")


def _account_identity(client: OAuthClientConfig, session: OAuth2Session, endpoints: dict) -> tuple[str, str]:
    """(account id, e-mail) of the person who logged in at the provider.

    An e-mail the provider says is unverified is refused: it could be used
    to take over the local account with that address.
    """
    info = session.get(endpoints["userinfo_endpoint"], timeout=HTTP_TIMEOUT).json()
    account_id = str(info.get("sub") or info.get("id") or "")
    email = info.get("email") if info.get("email_verified", True) is not False else None
    if client.CLIENT_NAME == "GITHUB" and not email:
        emails = session.get("https://api.github.com/user/emails", timeout=HTTP_TIMEOUT).json()
        email = next((e["email"] for e in emails if e.get("primary") and e.get("verified")), None)
    if not account_id or not email:
        raise ApiError(400, "OAUTH_NOT_AVAILABLE_EMAIL")
    return account_id, email


def _login_user(provider: str, account_id: str, email: str, token: dict) -> User:
    """The local user for this provider account, created or linked if needed."""
    account = db.session.query(OAuthAccount).filter_by(oauth_name=provider, account_id=account_id).first()
    if account is None:
        user = find_user_by_email(email)
        if user is None:
            user = create_user(email, secrets.token_urlsafe(32))
            logger.info("Created user %s at first login through %s", email, provider)
        account = OAuthAccount(user_id=user.id, oauth_name=provider, account_id=account_id)
        db.session.add(account)
    account.account_email = email
    account.access_token = token.get("access_token", "")
    account.refresh_token = token.get("refresh_token")
    account.expires_at = token.get("expires_at")
    db.session.commit()
    return account.user


def create_blueprint(client: OAuthClientConfig) -> Blueprint:
    provider = client.CLIENT_NAME.lower()
    endpoints = _Endpoints(client)
    blueprint = Blueprint(f"auth_oauth_{provider}", __name__, url_prefix=f"/auth/{provider}")

    def redirect_uri() -> str:
        return client.REDIRECT_URL or url_for(f"auth_oauth_{provider}.callback", _external=True)

    @endpoint(blueprint, "GET", "/authorize/", access=Access.ANONYMOUS, response=AuthorizationURL)
    def authorize():
        """Start logging in at the provider."""
        try:
            authorization_endpoint = endpoints.get()["authorization_endpoint"]
        except (requests.RequestException, ValueError, KeyError) as error:
            logger.error("Cannot reach the %s OAuth provider: %s", provider, error)
            raise ApiError(503, f"OAuth provider '{provider}' is not reachable.") from None
        url, _ = _session(client, redirect_uri()).create_authorization_url(
            authorization_endpoint, state=_make_state(provider)
        )
        return AuthorizationURL(authorization_url=url)

    @endpoint(blueprint, "GET", "/callback/", access=Access.ANONYMOUS, query=CallbackQuery, status=204)
    def callback(query: CallbackQuery):
        """Finish logging in: exchange the code, find or create the user, set the cookie."""
        if query.error or not query.code:
            raise ApiError(400, query.error or "OAUTH_MISSING_CODE")
        _check_state(query.state, provider)
        session = _session(client, redirect_uri())
        try:
            token = session.fetch_token(
                endpoints.get()["token_endpoint"],
                code=query.code,
                timeout=HTTP_TIMEOUT,
                headers={"Accept": "application/json"},
            )
            account_id, email = _account_identity(client, session, endpoints.get())
        except (AuthlibBaseError, requests.RequestException) as error:
            logger.warning("OAuth login through %s failed: %s", provider, error)
            raise ApiError(400, "OAUTH_TOKEN_EXCHANGE_FAILED") from None
        user = _login_user(provider, account_id, email, token)
        if not user.is_active:
            raise ApiError(400, "LOGIN_BAD_CREDENTIALS")
        return set_login_cookie(empty_response(204), user)

    return blueprint


@hookimpl
def fractal_auth_providers(settings):
    return [
        AuthProvider(name=client.CLIENT_NAME.lower(), create_blueprint=partial(create_blueprint, client))
        for client in settings.OAUTH_CLIENTS_CONFIG
    ]
