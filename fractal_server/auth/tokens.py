"""Issuing the JWTs that `current_user` accepts.

The payload is exactly `{"sub", "aud", "exp"}`, as the contract states
(`api-v2.md` section 0.3), so that tokens look the same as the ones the
reference server issues.
"""
from datetime import datetime, timedelta, timezone

import jwt

from fractal_server.auth.current_user import TOKEN_AUDIENCE
from fractal_server.db.models import User
from fractal_server.server_state import current_settings


def issue_token(user: User, lifetime_seconds: int) -> str:
    payload = {
        "sub": str(user.id),
        "aud": [TOKEN_AUDIENCE],
        "exp": datetime.now(tz=timezone.utc) + timedelta(seconds=lifetime_seconds),
    }
    return jwt.encode(payload, current_settings().JWT_SECRET_KEY, algorithm="HS256")
