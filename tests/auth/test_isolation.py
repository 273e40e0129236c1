"""Every route of the application refuses callers below its access level.

The routes are read from `app.url_map`, so blueprints added later are
covered without touching this file. Each view carries the `endpoint_spec`
that `fractal_server.http.routing.endpoint` attaches; its `access` is the
declared level, checked here against the contract (`api-v2.md` 0.3) and
then against the answers of real requests.
"""
import re

import pytest

from fractal_server.auth.current_user import Access

from .helpers import FORBIDDEN, UNAUTHORIZED, bearer, update_user

ANONYMOUS_PATHS = {"/api/alive/", "/auth/token/login/", "/auth/login/"}
OAUTH_PATH = re.compile(r"^/auth/[^/{}]+/(authorize|callback)/$")
VERIFIED_ROUTES = {
    ("POST", "/api/v2/task/"),
    ("PATCH", "/api/v2/task/{}/"),
    ("POST", "/api/v2/task/collect/pip/"),
    ("POST", "/api/v2/task/collect/custom/"),
    ("POST", "/api/v2/project/{}/job/submit/"),
}
SUPERUSER_PREFIXES = ("/admin/v2/", "/auth/users/", "/auth/group/")
SUPERUSER_PATHS = {"/auth/register/", "/api/settings/"}


def template(rule: str) -> str:
    """`/a/<x_id>/b/` -> `/a/{}/b/`."""
    return re.sub(r"<[^>]+>", "{}", rule)


def expected_access(method: str, path: str) -> Access:
    if path in ANONYMOUS_PATHS or OAUTH_PATH.match(path):
        return Access.ANONYMOUS
    if (method, path) in VERIFIED_ROUTES:
        return Access.VERIFIED
    if path in SUPERUSER_PATHS or path.startswith(SUPERUSER_PREFIXES):
        return Access.SUPERUSER
    return Access.ACTIVE


def routes(app):
    """(method, rule, spec) of every route declared with `endpoint`."""
    found = []
    for rule in app.url_map.iter_rules():
        spec = getattr(app.view_functions[rule.endpoint], "endpoint_spec", None)
        assert spec is not None, f"{rule} is not declared with fractal_server.http.routing.endpoint"
        found.append((spec.method, rule.rule, spec))
    return found


def protected_routes(app, *levels: Access):
    return [(method, rule) for method, rule, spec in routes(app) if spec.access in levels]


def fill(rule: str, value: str = "1") -> str:
    return re.sub(r"<[^>]+>", value, rule)


def assert_every_answer(client, selected, expected_status, expected_body, headers=None, value="1"):
    wrong = []
    for method, rule in selected:
        response = client.open(fill(rule, value), method=method, headers=headers or {})
        if (response.status_code, response.json) != (expected_status, expected_body):
            wrong.append(f"{method} {rule}: {response.status_code} {response.data[:200]!r}")
    assert not wrong, "\n".join(wrong)


def test_declared_access_levels_follow_the_contract(app):
    wrong = [
        f"{method} {rule}: declared {spec.access.name}, expected {expected_access(method, template(rule)).name}"
        for method, rule, spec in routes(app)
        if spec.access is not expected_access(method, template(rule))
    ]
    assert not wrong, "\n".join(wrong)


def test_the_auth_tree_is_all_there(app):
    """A guard for the test itself: the routes it iterates over are really found."""
    declared = {(method, template(rule)) for method, rule, _ in routes(app)}
    assert {
        ("POST", "/auth/register/"),
        ("PATCH", "/auth/users/{}/"),
        ("POST", "/auth/group/{}/remove-user/{}/"),
        ("GET", "/auth/current-user/allowed-viewer-paths/"),
        ("POST", "/auth/token/login/"),
    } <= declared


def test_anonymous_is_unauthorized_everywhere(app, client):
    every_protected = protected_routes(app, Access.ACTIVE, Access.VERIFIED, Access.SUPERUSER)
    assert_every_answer(client, every_protected, 401, UNAUTHORIZED)


def test_authentication_comes_before_path_validation(app, client):
    every_protected = protected_routes(app, Access.ACTIVE, Access.VERIFIED, Access.SUPERUSER)
    with_ids = [(method, rule) for method, rule in every_protected if "<" in rule]
    assert_every_answer(client, with_ids, 401, UNAUTHORIZED, value="not-an-id")


def test_invalid_token_is_unauthorized_everywhere(app, client):
    every_protected = protected_routes(app, Access.ACTIVE, Access.VERIFIED, Access.SUPERUSER)
    assert_every_answer(client, every_protected, 401, UNAUTHORIZED, headers=bearer("not-a-jwt"))


def test_inactive_user_is_unauthorized_everywhere(app, client, make_user):
    user_id, headers = make_user("inactive@example.org", is_superuser=True, is_verified=True)
    update_user(app, user_id, is_active=False)
    every_protected = protected_routes(app, Access.ACTIVE, Access.VERIFIED, Access.SUPERUSER)
    assert_every_answer(client, every_protected, 401, UNAUTHORIZED, headers=headers)


@pytest.mark.parametrize("verified", [False, True], ids=["unverified", "verified"])
def test_regular_user_is_forbidden_on_superuser_routes(app, client, make_user, verified):
    _, headers = make_user("user@example.org", is_verified=verified)
    assert_every_answer(client, protected_routes(app, Access.SUPERUSER), 403, FORBIDDEN, headers=headers)


def test_unverified_user_is_forbidden_on_verified_routes(app, client, make_user):
    _, headers = make_user("user@example.org", is_verified=False)
    assert_every_answer(client, protected_routes(app, Access.VERIFIED), 403, FORBIDDEN, headers=headers)
