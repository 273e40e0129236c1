"""`/api`: liveness and (for superusers) the sanitized settings."""
from flask import Blueprint
from pydantic import BaseModel

from fractal_server.auth.current_user import Access
from fractal_server.http.routing import endpoint
from fractal_server.server_state import current_settings

blueprint = Blueprint("api", __name__, url_prefix="/api")


class Alive(BaseModel):
    alive: bool
    version: str


@endpoint(blueprint, "GET", "/alive/", access=Access.ANONYMOUS, response=Alive)
def alive():
    """Tell that the server answers, and its version."""
    return Alive(alive=True, version=current_settings().PROJECT_VERSION)


@endpoint(blueprint, "GET", "/settings/", access=Access.SUPERUSER, response=dict)
def view_settings(user):
    """All settings, secrets masked."""
    return current_settings().get_sanitized()
