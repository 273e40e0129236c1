"""A small, real OpenID Connect provider that tests can run on loopback."""
