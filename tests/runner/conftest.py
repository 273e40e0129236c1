"""Fixtures for tests that run real jobs with the mock tasks."""
import sys
import time
from pathlib import Path

import pytest

from fractal_server.runner.executor import JobExecutor

MOCK_TASKS = Path(__file__).parents[1] / "mock_tasks" / "fractal_tasks_mock"


@pytest.fixture
def executor(app, client):
    """A job executor running in this process for the duration of one test."""
    state = app.extensions["fractal"]
    job_executor = JobExecutor(app, state.backend)
    job_executor.start()
    state.executor = job_executor
    yield job_executor
    job_executor.shutdown(grace_seconds=10)
    state.executor = None


@pytest.fixture
def runner_user(make_user, tmp_path):
    """A verified user and its headers; its zarr data go under `tmp_path`."""
    _, headers = make_user("runner@example.org", is_verified=True)
    return headers


def mock_command(script: str) -> str:
    return f"{sys.executable} {MOCK_TASKS / script}"


def create_task(client, headers, name, *, non_parallel=None, parallel=None, **fields) -> int:
    body = {"name": name, **fields}
    if non_parallel:
        body["command_non_parallel"] = mock_command(non_parallel)
    if parallel:
        body["command_parallel"] = mock_command(parallel)
    response = client.post("/api/v2/task/", json=body, headers=headers)
    assert response.status_code == 201, response.json
    return response.json["id"]


def wait_for_job(client, headers, project_id: int, job_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v2/project/{project_id}/job/{job_id}/", headers=headers).json
        if job["status"] != "submitted":
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still running after {timeout}s")
