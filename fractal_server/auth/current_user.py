"""Who is calling: token transports, token checks and access levels."""
import enum
from typing import Optional

from flask import g, request
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError

from fractal_server.db import db
from fractal_server.db.models import User
from fractal_server.http.errors import ApiError

COOKIE_NAME = "fastapiusersauth"
TOKEN_AUDIENCE = "fastapi-users:auth"


class Access(enum.Enum):
    """Who may call an endpoint."""

    ANONYMOUS = "anonymous"
    ACTIVE = "active user"
    VERIFIED = "verified user"
    SUPERUSER = "superuser"


def authenticate(access: Access) -> Optional[User]:
    """The calling user, or a 401/403 `ApiError` if `access` is not met."""
    if access is Access.ANONYMOUS:
        return None
    user = _user_from_token()
    if user is None or not user.is_active:
        raise ApiError(401, "Unauthorized")
    if access is Access.VERIFIED and not user.is_verified:
        raise ApiError(403, "Forbidden")
    if access is Access.SUPERUSER and not user.is_superuser:
        raise ApiError(403, "Forbidden")
    return user


def authenticated_by_cookie() -> bool:
    """Whether this request's user was recognised by the login cookie (not by a bearer token).

    A browser sends the cookie with requests that other sites make it send;
    nothing but the client itself can add a bearer token.
    """
    return g.get("fractal_transport") == "cookie"


def _user_from_token() -> Optional[User]:
    """The user of the first valid token: bearer header first, then cookie."""
    for transport, token in _presented_tokens():
        try:
            claims = decode_token(token)
            user_id = int(claims["sub"])
        except (JWTExtendedException, PyJWTError, KeyError, ValueError):
            continue
        user = db.session.get(User, user_id)
        if user is not None:
            g.fractal_transport = transport
            return user
    return None


def _presented_tokens() -> list[tuple[str, str]]:
    """`(transport, token)` pairs, in the order they are tried."""
    tokens = []
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        tokens.append(("bearer", credentials.strip()))
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:
        tokens.append(("cookie", cookie))
    return tokens
