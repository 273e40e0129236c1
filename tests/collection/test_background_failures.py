"""Collections that fail in the background leave nothing behind but their activity and its log.

All the collections of this module start together and run concurrently;
each test then checks one of them. To save time, the pip that comes with
each new environment is kept (FRACTAL_MAX_PIP_VERSION is its version).
Manifests that are invalid in other ways are tested without environments,
in `test_manifest.py`.
"""
import ensurepip
import json
import os
from pathlib import Path

import pytest
from appdb import new_user

from fractal_server.db import db
from fractal_server.db.models import TaskGroupV2, TaskV2
from fractal_server.task_collection import pypi

from .helpers import (
    FakeIndex,
    build_wheel,
    index_document,
    one_task_manifest,
    task_package_files,
    wait_for_activity,
)

UNKNOWN_PACKAGE = "fractal-tasks-surely-not-published"


def extras_package(folder: Path) -> Path:
    """A task package whose extra `mock` pulls in the mock task package."""
    manifest = one_task_manifest(authors="Extras demo")
    return build_wheel(
        folder, "fractal_tasks_extras_demo", "1.0.0", task_package_files("fractal_tasks_extras_demo", manifest),
        extras={"mock": ("fractal-tasks-mock",)},
    )


def requests_for(folder: Path) -> dict[str, dict]:
    """The body of each collection, by case name."""
    bad_wheel = folder / "bad" / "broken_package-1.0.0-py3-none-any.whl"
    bad_wheel.parent.mkdir(parents=True)
    bad_wheel.write_text("this is not a zip archive")
    no_manifest = build_wheel(folder / "nm", "no_manifest_pkg", "1.0.0", task_package_files("no_manifest_pkg", None))
    wrong_version = build_wheel(
        folder / "wv", "wrong_version_pkg", "1.0.0",
        task_package_files("wrong_version_pkg", one_task_manifest(manifest_version="1")),
    )
    return {
        "bad_wheel": {"package": str(bad_wheel)},
        "no_manifest": {"package": str(no_manifest)},
        "wrong_manifest_version": {"package": str(wrong_version)},
        "unknown_package": {"package": UNKNOWN_PACKAGE, "package_version": "1.0.0"},
        # The first pin is installed by the extra; the second is not installed at all.
        "extras_and_pins": {
            "package": str(extras_package(folder / "ex")),
            "package_extras": "mock",
            "pinned_package_versions": {"fractal-tasks-mock": "0.0.1", "numpy": "1.26.4"},
        },
    }


@pytest.fixture(scope="module")
def outcomes(app, module_client, tasks_dir, mock_wheel, tmp_path_factory):
    """Start every collection at once; answer, by case, the request's answer and the final activity."""
    _, headers = new_user(app, "owner@example.org", is_verified=True)
    bodies = requests_for(tmp_path_factory.mktemp("packages"))
    find_links = " ".join(filter(None, [os.environ.get("PIP_FIND_LINKS"), str(mock_wheel.parent)]))
    index = {UNKNOWN_PACKAGE: index_document("1.0.0", ["1.0.0"])}
    with pytest.MonkeyPatch.context() as patch, FakeIndex(index) as fake_index:
        patch.setattr(pypi, "PACKAGE_INDEX_JSON_API", fake_index.url)
        # Faster: the pip that comes with the venv is not replaced.
        patch.setattr(app.extensions["fractal"].settings, "FRACTAL_MAX_PIP_VERSION", ensurepip.version())
        # Where pip finds the mock package required by the extra.
        patch.setenv("PIP_FIND_LINKS", find_links)
        answers = {
            case: module_client.post(  # (json= would sort the keys, hence the pins)
                "/api/v2/task/collect/pip/", data=json.dumps(body), content_type="application/json", headers=headers
            )
            for case, body in bodies.items()
        }
        # Wait for every started collection before any assertion, so that none outlives the module.
        finals = {
            case: wait_for_activity(module_client, headers, answer.json["id"])
            for case, answer in answers.items()
            if answer.status_code == 202
        }
    for case, answer in answers.items():
        assert answer.status_code == 202, (case, answer.json)
    return {
        case: {"answer": answers[case].json, "activity": finals[case], "body": bodies.get(case)}
        for case in answers
    }


def assert_nothing_left(app, tasks_dir, outcome, pkg_name: str, version: str) -> None:
    activity = outcome["activity"]
    assert activity["status"] == "failed"
    assert activity["timestamp_ended"] is not None
    assert activity["taskgroupv2_id"] is None  # the group is gone
    path = tasks_dir / "1" / pkg_name / version
    assert not path.exists()
    with app.app_context():
        assert db.session.get(TaskGroupV2, outcome["answer"]["taskgroupv2_id"]) is None
        assert db.session.query(TaskV2).filter(TaskV2.taskgroupv2_id == outcome["answer"]["taskgroupv2_id"]).count() == 0
    log = activity["log"]
    assert f"Removed {path}" in log
    assert f"Deleted task group {outcome['answer']['taskgroupv2_id']}." in log
    assert log.rstrip().endswith("END: failure.")


@pytest.mark.parametrize(
    "case, pkg_name, version, reason",
    [
        ("bad_wheel", "broken-package", "1.0.0", "install package failed with exit status 1."),
        ("no_manifest", "no-manifest-pkg", "1.0.0",
         "Manifest path not found for no-manifest-pkg (__FRACTAL_MANIFEST__.json is not among its files)."),
        ("wrong_manifest_version", "wrong-version-pkg", "1.0.0", "manifest.manifest_version: Wrong manifest version (given 1)"),
        ("unknown_package", UNKNOWN_PACKAGE, "1.0.0", "install package failed with exit status 1."),
        ("extras_and_pins", "fractal-tasks-extras-demo", "1.0.0",
         "check that pinned package numpy is installed failed with exit status 1."),
    ],
)
def test_failed_collection(app, tasks_dir, outcomes, case, pkg_name, version, reason):
    outcome = outcomes[case]
    assert (outcome["answer"]["status"], outcome["answer"]["pkg_name"]) == ("pending", pkg_name)
    assert_nothing_left(app, tasks_dir, outcome, pkg_name, version)
    assert reason in outcome["activity"]["log"]


def test_failures_say_what_pip_said(outcomes):
    assert "WARNING: Package(s) not found: numpy" in outcomes["extras_and_pins"]["activity"]["log"]
    assert f"No matching distribution found for {UNKNOWN_PACKAGE}==1.0.0" in outcomes["unknown_package"]["activity"]["log"]
    assert "broken_package-1.0.0-py3-none-any.whl" in outcomes["bad_wheel"]["activity"]["log"]


def test_extras_are_installed_and_each_pin_is_checked(outcomes):
    log = outcomes["extras_and_pins"]["activity"]["log"]
    wheel = outcomes["extras_and_pins"]["body"]["package"].rsplit("/", 1)[1]
    assert f"/fractal-tasks-extras-demo/1.0.0/{wheel}[mock]'\n" in log
    assert "Successfully installed fractal-tasks-extras-demo-1.0.0 fractal-tasks-mock-0.0.1" in log
    # The first pin is there thanks to the extra; the second one is not installed.
    assert "END check that pinned package fractal-tasks-mock is installed (exit status 0" in log
    assert "END check that pinned package numpy is installed (exit status 1" in log
    assert "install pinned versions" not in log


def test_a_new_collection_is_possible_after_a_failure(outcomes, module_client, app, no_background):
    """The failed collection freed its name and its path."""
    headers = {"Authorization": f"Bearer {_token(app)}"}
    wheel = outcomes["extras_and_pins"]["body"]["package"]
    response = module_client.post("/api/v2/task/collect/pip/", json={"package": wheel}, headers=headers)
    assert response.status_code == 202, response.json
    assert no_background == [response.json["id"]]


def _token(app) -> str:
    from fractal_server.auth.tokens import issue_token
    from fractal_server.db.models import User

    with app.app_context():
        return issue_token(db.session.get(User, 1), 3600)
