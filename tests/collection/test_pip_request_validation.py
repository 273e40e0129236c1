"""`POST /api/v2/task/collect/pip/`: request validation and the first checks, which store nothing.

One database and one user for the whole module (each test of `test_pip_endpoint.py` gets a fresh database).
"""
import sys

import pytest
from appdb import new_user

from .helpers import detail, field_error

URL = "/api/v2/task/collect/pip/"
OWN_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
OTHER_VERSION = "3.9" if OWN_VERSION != "3.9" else "3.10"


@pytest.fixture(scope="module")
def headers(app, module_client):
    return new_user(app, "alice@example.org", is_verified=True)[1]


@pytest.fixture
def post(module_client, headers, no_background):
    def post_body(query: str = "", **body):
        response = module_client.post(f"{URL}{query}", json=body, headers=headers)
        assert response.status_code != 202, "nothing is stored by these tests"
        return response

    return post_body


@pytest.mark.parametrize(
    "body, loc, msg",
    [
        ({"package": "dist/pkg-1.0-py3-none-any.whl"}, ["body", "package"],
         "Local-package path must be absolute: (given dist/pkg-1.0-py3-none-any.whl)."),
        ({"package": "/tmp/pkg-1.0.tar.gz"}, ["body", "package"],
         "Local-package path must be a wheel file (given /tmp/pkg-1.0.tar.gz)."),
        ({"package": "/tmp/pkg-1.0-py3-none-any.whl", "package_version": "1.0"}, ["body", "__root__"],
         "Cannot provide package version when package is a wheel file."),
        ({"package": "pkg", "package_version": None}, ["body", "package_version"],
         "String attribute 'package_version' cannot be None"),
        ({"package": "  "}, ["body", "package"], "String attribute 'package' cannot be empty"),
        ({"package": "pkg", "python_version": "3.8"}, ["body", "python_version"],
         "unexpected value; permitted: '3.9', '3.10', '3.11', '3.12'"),
        ({"package": "pkg", "extra": 1}, ["body", "extra"], "extra fields not permitted"),
        ({"package": "pkg", "pinned_package_versions": {" a ": "1", "a": "2"}}, ["body", "pinned_package_versions"],
         "Dictionary contains multiple identical keys"),
    ],
)
def test_invalid_bodies(post, body, loc, msg):
    field_error(post(**body), loc, msg)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"package": "pkg;rm"}, "package"),
        ({"package": "pkg", "package_version": "1.0 && ls"}, "package_version"),
        ({"package": "pkg", "package_extras": "a]"}, "package_extras"),
        ({"package": "pkg", "pinned_package_versions": {"numpy": "1; ls"}}, "pinned_package_versions"),
    ],
)
def test_forbidden_characters(post, body, field):
    (error,) = detail(post(**body))
    assert error["loc"] == ["body", field]
    assert error["msg"].startswith(f"{field} must not contain any of this characters")


@pytest.mark.parametrize(
    "body, field, msg",
    [
        ({"package": "--index-url=evil"}, "package", "Invalid package name '--index-url=evil'"),
        ({"package": "my package"}, "package", "Invalid package name 'my package'"),
        ({"package": "pkg", "package_version": "-e"}, "package_version", "Invalid package version '-e'"),
        ({"package": "pkg", "package_extras": "a,,b"}, "package_extras", "Invalid package extras 'a,,b'"),
        ({"package": "pkg", "pinned_package_versions": {"-r": "1"}}, "pinned_package_versions",
         "Invalid pinned package name '-r'"),
        ({"package": "pkg", "pinned_package_versions": {"numpy": "1.0 --pre"}}, "pinned_package_versions",
         "Invalid pinned version of 'numpy' '1.0 --pre'"),
    ],
)
def test_names_and_versions_are_checked(post, body, field, msg):
    """What reaches pip's argument list cannot be read as an option."""
    (error,) = detail(post(**body))
    assert error["loc"] == ["body", field]
    assert error["msg"].startswith(msg)


def test_python_version_comes_first(post):
    message = f"Python version {OTHER_VERSION} is not available for Fractal task collection."
    assert detail(post(package="/tmp/invalid.whl", python_version=OTHER_VERSION)) == message


def test_invalid_wheel_names(post):
    assert detail(post(package="/tmp/invalid.whl")) == [
        "Invalid wheel-file name invalid.whl. Original error: the file name must look like "
        "'<distribution>-<version>-<tags>.whl' (found 1 field(s) separated by '-')."
    ]
    assert detail(post(package="/tmp/pkg-..-py3-none-any.whl")) == [
        "Invalid wheel-file name pkg-..-py3-none-any.whl. Original error: invalid version '..'."
    ]


