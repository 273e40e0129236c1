"""Fixtures of the `/auth` tests."""
import bcrypt
import pytest

_real_gensalt = bcrypt.gensalt


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch):
    """Cheap bcrypt hashes (cost 4 instead of 12): users are created and log in a lot here."""
    monkeypatch.setattr(bcrypt, "gensalt", lambda rounds=4, prefix=b"2b": _real_gensalt(4, prefix))


@pytest.fixture
def admin(superuser):
    """Bearer headers of a verified superuser (`admin@example.org`, user id 1)."""
    return superuser[1]


@pytest.fixture
def jwt_key(environ) -> str:
    return environ["JWT_SECRET_KEY"]
