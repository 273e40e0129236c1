"""Fixtures for tests that run real jobs with the mock tasks.

Jobs run for real: they are submitted through the API, claimed by a job
executor running in the test process, and their task calls are subprocesses
running the dependency-free scripts of `tests/mock_tasks/fractal_tasks_mock`.
"""
import io
import json
import shutil
import sys
import time
import zipfile
from pathlib import Path
from typing import Optional

import pytest
from servers import wait_until as wait_for  # noqa: F401 (imported by the tests here)

from fractal_server.app import create_app
from fractal_server.runner.executor import JobExecutor

MOCK_TASKS = Path(__file__).parents[1] / "mock_tasks" / "fractal_tasks_mock"


@pytest.fixture(autouse=True)
def empty_jobs_folder(environ):
    """Ids restart at 1 in every test: clear the job folders of earlier tests,
    whose names (`proj_v2_0000001_wf_0000001_job_0000001_<time>`) could come again."""
    base = Path(environ["FRACTAL_RUNNER_WORKING_BASE_DIR"])
    if base.is_dir():
        shutil.rmtree(base)
    elif base.exists():
        base.unlink()


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
    """The command of a mock task; `-S` (no `site`) makes the interpreter start much faster."""
    return f"{sys.executable} -S {MOCK_TASKS / script}"


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
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still running after {timeout}s")


# The usual tasks, as (name, create_task keyword arguments) -------------------

TASKS = {
    "create_images": dict(non_parallel="create_images.py", output_types={"is_3D": True}),
    "generic_non_parallel": dict(non_parallel="generic_non_parallel.py"),
    "generic_parallel": dict(parallel="generic_parallel.py"),
    "generic_compound": dict(non_parallel="generic_compound_init.py", parallel="generic_compound_compute.py"),
    "mip_compound": dict(
        non_parallel="generic_compound_init.py",
        parallel="generic_compound_compute.py",
        input_types={"is_3D": True},
        output_types={"is_3D": False},
    ),
}


class RunnerApi:
    """A user's view of the API, with shortcuts for building and running jobs."""

    def __init__(self, client, headers, tmp_path: Path):
        self.client = client
        self.headers = headers
        self.tmp_path = tmp_path
        response = client.post("/api/v2/project/", json={"name": "project"}, headers=headers)
        assert response.status_code == 201, response.json
        self.project_id = response.json["id"]
        self._tasks: dict[str, int] = {}
        self._datasets = 0
        self._workflows = 0

    # --- plain requests ---------------------------------------------------

    def get(self, url, **kwargs):
        return self.client.get(url, headers=self.headers, **kwargs)

    def post(self, url, **kwargs):
        return self.client.post(url, headers=self.headers, **kwargs)

    def patch(self, url, **kwargs):
        return self.client.patch(url, headers=self.headers, **kwargs)

    def delete(self, url, **kwargs):
        return self.client.delete(url, headers=self.headers, **kwargs)

    @property
    def project_url(self) -> str:
        return f"/api/v2/project/{self.project_id}"

    # --- building blocks --------------------------------------------------

    def task(self, name: str, **fields) -> int:
        """The id of a task of that name, created at first use.

        Names of `TASKS` get their usual commands and types; other names need
        `non_parallel=`/`parallel=` (script names) and any TaskCreate field.
        """
        if name not in self._tasks:
            spec = {**TASKS.get(name, {}), **fields}
            self._tasks[name] = create_task(self.client, self.headers, name, **spec)
        return self._tasks[name]

    def dataset(self, *, zarr_dir: Optional[str] = None, filters=None, images=(), name: Optional[str] = None) -> int:
        self._datasets += 1
        zarr_dir = zarr_dir or str(self.tmp_path / f"zarr{self._datasets}")
        body = {"name": name or f"ds{self._datasets}", "zarr_dir": zarr_dir}
        if filters is not None:
            body["filters"] = filters
        response = self.post(f"{self.project_url}/dataset/", json=body)
        assert response.status_code == 201, response.json
        dataset_id = response.json["id"]
        for image in images:
            response = self.post(f"{self.project_url}/dataset/{dataset_id}/images/", json=image)
            assert response.status_code == 201, response.json
        return dataset_id

    def zarr_dir(self, dataset_id: int) -> str:
        return self.get(f"{self.project_url}/dataset/{dataset_id}/").json["zarr_dir"]

    def workflow(self, *wftasks, name: Optional[str] = None) -> int:
        """A workflow of `(task name, wftask body)` pairs (or bare task names)."""
        self._workflows += 1
        response = self.post(f"{self.project_url}/workflow/", json={"name": name or f"wf{self._workflows}"})
        assert response.status_code == 201, response.json
        workflow_id = response.json["id"]
        for item in wftasks:
            task_name, body = (item, {}) if isinstance(item, str) else item
            self.add_wftask(workflow_id, task_name, **body)
        return workflow_id

    def add_wftask(self, workflow_id: int, task_name: str, **body) -> dict:
        response = self.post(
            f"{self.project_url}/workflow/{workflow_id}/wftask/?task_id={self.task(task_name)}", json=body
        )
        assert response.status_code == 201, response.json
        return response.json

    def wftask_ids(self, workflow_id: int) -> list[int]:
        workflow = self.get(f"{self.project_url}/workflow/{workflow_id}/").json
        return [wftask["id"] for wftask in workflow["task_list"]]

    # --- jobs -------------------------------------------------------------

    def submit_response(self, workflow_id: int, dataset_id: int, body: Optional[dict] = None):
        return self.post(
            f"{self.project_url}/job/submit/?workflow_id={workflow_id}&dataset_id={dataset_id}",
            json=body or {},
        )

    def submit(self, workflow_id: int, dataset_id: int, body: Optional[dict] = None) -> dict:
        response = self.submit_response(workflow_id, dataset_id, body)
        assert response.status_code == 202, response.json
        return response.json

    def wait(self, job_id: int, timeout: float = 60) -> dict:
        return wait_for_job(self.client, self.headers, self.project_id, job_id, timeout)

    def run(self, workflow_id: int, dataset_id: int, body: Optional[dict] = None, status: Optional[str] = None) -> dict:
        """Submit, wait for the end; check the final status if given."""
        job = self.wait(self.submit(workflow_id, dataset_id, body)["id"])
        if status is not None:
            assert job["status"] == status, job["log"]
        return job

    def job(self, job_id: int, **query) -> dict:
        response = self.get(f"{self.project_url}/job/{job_id}/", query_string=query)
        assert response.status_code == 200, response.json
        return response.json

    def files(self, job: dict) -> dict[str, bytes]:
        """The job folder's files, through the download endpoint."""
        response = self.get(f"{self.project_url}/job/{job['id']}/download/")
        assert response.status_code == 200, response.data
        with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}

    def json_file(self, job: dict, name: str):
        return json.loads(self.files(job)[name])

    # --- dataset state ----------------------------------------------------

    def dataset_read(self, dataset_id: int) -> dict:
        response = self.get(f"{self.project_url}/dataset/{dataset_id}/")
        assert response.status_code == 200, response.json
        return response.json

    def images(self, dataset_id: int) -> list[dict]:
        response = self.get(f"{self.project_url}/dataset/{dataset_id}/export/")
        assert response.status_code == 200, response.json
        return response.json["images"]

    def image_urls(self, dataset_id: int) -> list[str]:
        return [image["zarr_url"] for image in self.images(dataset_id)]

    def filters(self, dataset_id: int) -> dict:
        return self.dataset_read(dataset_id)["filters"]

    def history(self, dataset_id: int) -> list[dict]:
        return self.dataset_read(dataset_id)["history"]

    def set_filters(self, dataset_id: int, filters: dict) -> None:
        response = self.patch(f"{self.project_url}/dataset/{dataset_id}/", json={"filters": filters})
        assert response.status_code == 200, response.json

    def status(self, dataset_id: int, workflow_id: int):
        return self.get(f"{self.project_url}/status/?dataset_id={dataset_id}&workflow_id={workflow_id}")


@pytest.fixture
def api(client, runner_user, tmp_path) -> RunnerApi:
    """The runner user's API, with one project."""
    return RunnerApi(client, runner_user, tmp_path)


@pytest.fixture
def run_api(api, executor) -> RunnerApi:
    """`api` with a job executor running (jobs submitted through it run)."""
    return api


def image(zarr_url: str, *, origin=None, attributes=None, types=None) -> dict:
    return {"zarr_url": zarr_url, "origin": origin, "attributes": attributes or {}, "types": types or {}}


# Other server configurations on the same database ---------------------------

_APPS: dict = {}


@pytest.fixture
def other_app(environ, client):
    """Build (once per configuration) an app with extra settings; start its executor.

    `other_app(FRACTAL_RUNNER_BACKEND="local_experimental")` returns the app;
    its executor runs until the end of the test. Do not combine with the
    `executor` fixture: two executors would compete for the same jobs.
    """
    started = []

    def make(**settings):
        key = tuple(sorted(settings.items()))
        if key not in _APPS:
            _APPS[key] = create_app(environ={**environ, **settings})
        application = _APPS[key]
        state = application.extensions["fractal"]
        job_executor = JobExecutor(application, state.backend)
        job_executor.start()
        state.executor = job_executor
        started.append(state)
        return application

    yield make
    for state in started:
        state.executor.shutdown(grace_seconds=10)
        state.executor = None
