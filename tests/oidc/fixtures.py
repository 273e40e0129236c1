"""Pytest fixtures for the test OpenID Connect provider.

Use them from a test module or conftest with
``pytest_plugins = ["oidc.fixtures"]`` (``tests/`` is on ``sys.path``), or
import the fixture functions directly.
"""

import pytest

from .provider import OIDCProvider, generate_signing_key

OIDC_CLIENT_ID = "fractal-test-client"
OIDC_CLIENT_SECRET = "fractal-test-client-secret"
OIDC_REDIRECT_URI = "http://127.0.0.1/oidc/callback"


@pytest.fixture(scope="session")
def oidc_signing_key():
    """One RSA key per session: generating keys is the slow part."""
    return generate_signing_key()


@pytest.fixture
def oidc_provider(oidc_signing_key):
    """A running provider with one client (OIDC_CLIENT_ID / OIDC_CLIENT_SECRET).

    Its only redirect URI is OIDC_REDIRECT_URI; a test that knows its real
    callback address registers it with `oidc_provider.add_redirect_uri()`.
    """
    with OIDCProvider(
        client_id=OIDC_CLIENT_ID,
        client_secret=OIDC_CLIENT_SECRET,
        redirect_uris=[OIDC_REDIRECT_URI],
        signing_key=oidc_signing_key,
    ) as provider:
        yield provider
