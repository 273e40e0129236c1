"""Small helpers shared by the `/auth` tests."""
import re
import time

import jwt

from fractal_server.db import db
from fractal_server.db.models import User

AUDIENCE = "fastapi-users:auth"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$")
UNAUTHORIZED = {"detail": "Unauthorized"}
FORBIDDEN = {"detail": "Forbidden"}
BAD_CREDENTIALS = {"detail": "LOGIN_BAD_CREDENTIALS"}
CANNOT_REMOVE_FROM_ALL = {"detail": ["Cannot remove user from 'All' group."]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_token(key: str, sub="1", audience=AUDIENCE, lifetime: int = 60, algorithm="HS256") -> str:
    """A JWT with the payload the contract describes, with any part changed."""
    payload = {"sub": sub, "aud": [audience], "exp": int(time.time()) + lifetime}
    return jwt.encode(payload, key, algorithm=algorithm)


def login(client, email: str, password: str, path: str = "/auth/token/login/", **extra):
    return client.post(path, data={"username": email, "password": password, **extra})


def validation_error(loc: list, msg: str, type_: str = "value_error") -> dict:
    """A 422 body with a single pydantic-v1 style error."""
    return {"detail": [{"loc": loc, "msg": msg, "type": type_}]}


def update_user(app, user_id: int, **attributes) -> None:
    """Change a user row directly in the database."""
    with app.app_context():
        user = db.session.get(User, user_id)
        for name, value in attributes.items():
            setattr(user, name, value)
        db.session.commit()


def cookie_attributes(set_cookie: str) -> tuple[str, str, dict[str, str]]:
    """(name, value, {lower-cased attribute: value}) of one Set-Cookie header."""
    first, *attributes = [part.strip() for part in set_cookie.split(";")]
    name, _, value = first.partition("=")
    parsed = {}
    for attribute in attributes:
        key, _, attribute_value = attribute.partition("=")
        parsed[key.lower()] = attribute_value
    return name, value, parsed
