"""Fixtures of the `/auth` tests."""
import pytest


@pytest.fixture
def jwt_key(environ) -> str:
    return environ["JWT_SECRET_KEY"]
