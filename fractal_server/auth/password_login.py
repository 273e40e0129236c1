"""The built-in auth provider: e-mail and password, as bearer token or cookie."""
from flask import Blueprint, Response

from fractal_server.auth.accounts import find_user_by_email
from fractal_server.auth.current_user import COOKIE_NAME, Access
from fractal_server.auth.passwords import hash_password, verify_password
from fractal_server.auth.providers import AuthProvider
from fractal_server.auth.tokens import issue_token
from fractal_server.db.models import User
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import empty_response, endpoint
from fractal_server.plugins import hookimpl
from fractal_server.schemas.users import BearerToken, LoginForm
from fractal_server.server_state import current_settings

# Checked against when the e-mail is unknown, so that both cases take as long.
_DUMMY_HASH = hash_password("not a real password")


def check_credentials(form: LoginForm) -> User:
    user = find_user_by_email(form.username)
    if user is None:
        verify_password(form.password, _DUMMY_HASH)
        raise ApiError(400, "LOGIN_BAD_CREDENTIALS")
    if not verify_password(form.password, user.hashed_password) or not user.is_active:
        raise ApiError(400, "LOGIN_BAD_CREDENTIALS")
    return user


def set_login_cookie(response: Response, user: User) -> Response:
    token = issue_token(user, current_settings().COOKIE_EXPIRE_SECONDS)
    response.set_cookie(COOKIE_NAME, token, httponly=True, path="/", samesite="None", secure=True)
    return response


def create_blueprint() -> Blueprint:
    blueprint = Blueprint("auth_password", __name__, url_prefix="/auth")

    @endpoint(
        blueprint, "POST", "/token/login/", access=Access.ANONYMOUS, form=LoginForm, response=BearerToken,
        errors=(400,),
    )
    def token_login(form: LoginForm):
        """Log in; answer a bearer token."""
        user = check_credentials(form)
        token = issue_token(user, current_settings().JWT_EXPIRE_SECONDS)
        return BearerToken(access_token=token, token_type="bearer")

    @endpoint(blueprint, "POST", "/login/", access=Access.ANONYMOUS, form=LoginForm, status=204, errors=(400,))
    def cookie_login(form: LoginForm):
        """Log in; set the login cookie."""
        return set_login_cookie(empty_response(204), check_credentials(form))

    return blueprint


@hookimpl
def fractal_auth_providers(settings):
    return [AuthProvider(name="password", create_blueprint=create_blueprint)]
