"""Which version of an index package a pip collection installs (`task-collection.md` 4).

The version is resolved by the endpoint, before anything is created, from
the package index's JSON API (`<PACKAGE_INDEX_JSON_API>/<package>/json`).
Installation itself then goes through pip and the host's pip configuration.
"""
from typing import Optional

import requests

from fractal_server.http.errors import ApiError
from fractal_server.task_collection.packages import is_version

PACKAGE_INDEX_JSON_API = "https://pypi.org/pypi"
"""Base URL of the JSON API (a module constant, so that a deployment or a test can point elsewhere)."""

TIMEOUT_SECONDS = 5


def resolve_version(package: str, requested: Optional[str]) -> str:
    """The requested version if the index has it, else the greatest one it starts (422 otherwise).

    Without a requested version: the latest version the index announces.
    """
    url = f"{PACKAGE_INDEX_JSON_API}/{package}/json"
    hint = f"Hint: specify the required version for '{package}'."
    try:
        response = requests.get(url, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as error:
        raise ApiError(422, f"Could not get {url}.\nOriginal error: {error}\n{hint}") from None
    if response.status_code != 200:
        raise ApiError(422, f"Could not get {url} (status_code {response.status_code}).\n{hint}")
    try:
        document = response.json()
        latest = document["info"]["version"]
        releases = list(document["releases"])
    except (ValueError, KeyError, TypeError) as error:
        raise ApiError(
            422, f"Could not read the versions of '{package}' in the answer of {url}.\nOriginal error: {error!r}\n{hint}"
        ) from None
    if requested is None:
        version = latest
    elif requested in releases:
        version = requested
    else:
        candidates = sorted(release for release in releases if release.startswith(requested))
        if not candidates:
            raise ApiError(422, f"No version starting with {requested} found.\n{hint}")
        version = candidates[-1]
    if not isinstance(version, str) or not is_version(version):
        raise ApiError(422, f"The package index answered an invalid version {version!r} for '{package}'.")
    return version
