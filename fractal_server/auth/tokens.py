"""Issuing the JWTs that `current_user` accepts."""
from datetime import timedelta

from flask_jwt_extended import create_access_token

from fractal_server.db.models import User


def issue_token(user: User, lifetime_seconds: int) -> str:
    return create_access_token(
        identity=str(user.id), expires_delta=timedelta(seconds=lifetime_seconds)
    )
