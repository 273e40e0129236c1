"""Collecting a published task package by name from the package index: fractal-tasks-core 1.x.

Slow (it installs numpy, dask, zarr and the rest): it runs in the tox
environment `collect-pypi`, which sets FRACTAL_TEST_COLLECT_PYPI=1.
"""
import os
import sys
from pathlib import Path

import pytest
from appdb import new_user

from .helpers import wait_for_activity

pytestmark = pytest.mark.skipif(
    not os.environ.get("FRACTAL_TEST_COLLECT_PYPI"), reason="slow; set FRACTAL_TEST_COLLECT_PYPI=1 (tox -e collect-pypi)"
)

PACKAGE, REQUESTED, VERSION = "fractal-tasks-core", "1.4", "1.4.3"
"""1.4.3 is the last 1.4 release (Python >=3.10,<3.13); asked as the prefix `1.4`."""


def test_collect_fractal_tasks_core(app, module_client, tasks_dir):
    user_id, headers = new_user(app, "owner@example.org", is_verified=True)
    body = {"package": PACKAGE, "package_version": REQUESTED}
    response = module_client.post("/api/v2/task/collect/pip/", json=body, headers=headers)
    assert response.status_code == 202, response.json
    assert (response.json["pkg_name"], response.json["version"]) == (PACKAGE, VERSION)
    activity = wait_for_activity(module_client, headers, response.json["id"], timeout=1800, interval=5)
    assert activity["status"] == "OK", activity["log"]
    assert f"-m pip install --no-cache-dir {PACKAGE}=={VERSION}\n" in activity["log"]

    task_group = module_client.get(f"/api/v2/task-group/{activity['taskgroupv2_id']}/", headers=headers).json
    path = tasks_dir / str(user_id) / PACKAGE / VERSION
    assert (task_group["origin"], task_group["path"], task_group["wheel_path"]) == ("pypi", str(path), None)
    assert f"{PACKAGE}=={VERSION}" in task_group["pip_freeze"].splitlines()
    assert any(line.startswith("numpy==") for line in task_group["pip_freeze"].splitlines())
    assert task_group["venv_size_in_kB"] > 50_000

    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    package_root = Path(task_group["venv_path"]) / "lib" / f"python{python_version}" / "site-packages" / "fractal_tasks_core"
    tasks = task_group["task_list"]
    names = [task["name"] for task in tasks]
    assert len(tasks) == 10
    assert names[:2] == ["Convert Cellvoyager to OME-Zarr", "Convert Cellvoyager Multiplexing to OME-Zarr"]
    assert {"Illumination Correction", "Cellpose Segmentation", "Import OME-Zarr"} <= set(names)
    for task in tasks:
        assert (task["version"], task["authors"]) == (VERSION, "Fractal Core Team")
        assert task["args_schema_version"] == "pydantic_v2"  # the package ships its schemas
        for kind in ("non_parallel", "parallel"):
            command = task[f"command_{kind}"]
            if command is None:
                assert task[f"args_schema_{kind}"] is None
                continue
            python, script = command.split()
            assert python == f"{task_group['venv_path']}/bin/python"
            assert script.startswith(f"{package_root}/") and Path(script).is_file()
            assert task[f"args_schema_{kind}"]["properties"]
        assert task["docs_info"]
    assert {task["type"] for task in tasks} == {"compound", "parallel", "non_parallel"}
