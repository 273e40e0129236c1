"""Auth providers: ways to log in, each contributing routes under `/auth`."""
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint


@dataclass(frozen=True)
class AuthProvider:
    """An auth provider, as returned by the `fractal_auth_providers` hook."""

    name: str
    create_blueprint: Callable[[], Blueprint]
    """Routes of the provider; mounted under `/auth`."""
