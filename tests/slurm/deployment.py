"""A real server with the slurm backend, run by the service account as in production.

The server process runs as `fractal-svc` (never root), submits through the
sudoers rule of `scripts/slurm-cluster`, and its users' jobs run on the
local cluster as `fractal-user1` and `fractal-user2`, each in a private
project folder. Everything lives under one folder of `TEST_BASE_DIR`: the
server's folder (jobs, tasks, configuration), the users' project folders,
and `shared/` (world-readable: the mock tasks, gate files).
"""

import json
import os
import shutil
import signal
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from runner.conftest import MOCK_TASKS, create_task, wait_for_job
from servers import DEFAULT_ADMIN, FRACTALCTL_START, Client, Deployment, ServerProcess, postgres, throwaway_database, wait_until

from .cluster import (
    SERVICE_ACCOUNT,
    TASK_USERS,
    TEST_BASE_DIR,
    cancel_jobs_under,
    make_owned_dir,
    running_slurm_jobs,
    slurm_jobs,
)

AS_SERVICE_ACCOUNT = [
    "setpriv",
    f"--reuid={SERVICE_ACCOUNT}",
    f"--regid={SERVICE_ACCOUNT}",
    "--init-groups",
    "--",
]
TASK_PYTHON = "/usr/bin/python3"
"""Runs the mock tasks: every task user can run it."""
SLURM_CONFIG = {
    "default_slurm_config": {"partition": "main", "cpus_per_task": 1, "mem": "100M"},
    # The cluster has neither this partition nor GPUs: sbatch refuses such jobs (their scripts are checked).
    "gpu_slurm_config": {"partition": "gpu", "gres": "gpu:1", "gpus": "1", "mem": "200M"},
    # One CPU per SLURM job: the node has two, and the time-limit test holds one for 90 s.
    "batching_config": {
        "target_cpus_per_job": 1,
        "max_cpus_per_job": 1,
        "target_mem_per_job": "400M",
        "max_mem_per_job": "1G",
        "target_num_jobs": 2,
        "max_num_jobs": 4,
    },
}


class SlurmDeployment:
    """A `slurm` server by default; `slurm_config` and `environ` change its configuration (e.g. `slurm_ssh`)."""

    def __init__(self, root: Path, database: str, slurm_config: Optional[dict] = None, **environ: str):
        self.root = root
        self.server_dir = make_owned_dir(root / "server", SERVICE_ACCOUNT, 0o755)
        self.project_dirs = {user: make_owned_dir(root / user, user, 0o700) for user in TASK_USERS}
        self.shared = root / "shared"
        shutil.copytree(MOCK_TASKS, self.shared / "mock_tasks", ignore=shutil.ignore_patterns("__pycache__"))
        for path in [self.shared, *self.shared.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        config = self.server_dir / "slurm_config.json"
        config.write_text(json.dumps(slurm_config or SLURM_CONFIG))
        self.servers = Deployment(
            self.server_dir,
            database,
            **{
                "FRACTAL_RUNNER_BACKEND": "slurm",
                "FRACTAL_SLURM_CONFIG_FILE": str(config),
                "FRACTAL_SLURM_POLL_INTERVAL": "1",
                "FRACTAL_SLURM_ERROR_HANDLING_INTERVAL": "2",
                **environ,
            },
        )

    @property
    def server(self) -> ServerProcess:
        """The server started last."""
        return self.servers.servers[-1]

    def start(self) -> ServerProcess:
        return self.servers.start([*AS_SERVICE_ACCOUNT, *FRACTALCTL_START])

    def kill(self) -> None:
        self.servers.kill_servers()

    def ensure_running(self) -> None:
        """Start a server if the last one was killed or died."""
        if not self.servers.servers or self.server.process.poll() is not None:
            self.start()

    def task_command(self, script: str) -> str:
        return f"{TASK_PYTHON} -S {self.shared / 'mock_tasks' / script}"


class User:
    """A Fractal user of the deployment, over HTTP, with one project whose datasets are under `project_dir`."""

    def __init__(self, deployment: SlurmDeployment, credentials: tuple[str, str], project_dir: Path):
        self.deployment = deployment
        self.credentials = credentials
        self.project_dir = project_dir
        self.headers = deployment.server.login(credentials)
        self.id = self.get("/auth/current-user/")["id"]
        self.project_id = self.post("/api/v2/project/", {"name": f"project-{project_dir.name}"})["id"]

    @property
    def client(self) -> Client:
        """HTTP to the deployment's current server (tokens outlive a restart)."""
        return Client(self.deployment.server.url)

    def get(self, path: str, status: int = 200):
        response = self.client.get(path, headers=self.headers)
        assert response.status_code == status, response.text
        return response.json

    def post(self, path: str, body: dict, status: int = 201, method: str = "post"):
        response = getattr(self.client, method)(path, json=body, headers=self.headers)
        assert response.status_code == status, response.text
        return response.json

    @property
    def project(self) -> str:
        return f"/api/v2/project/{self.project_id}"

    def task(self, name: str, *, non_parallel: Optional[str] = None, parallel: Optional[str] = None) -> int:
        commands = {}
        if non_parallel:
            commands["command_non_parallel"] = self.deployment.task_command(non_parallel)
        if parallel:
            commands["command_parallel"] = self.deployment.task_command(parallel)
        return create_task(self.client, self.headers, f"{name}-{time.monotonic_ns()}", **commands)

    def dataset(self, name: str) -> int:
        body = {"name": name, "zarr_dir": str(self.project_dir / "zarr" / name)}
        return self.post(f"{self.project}/dataset/", body)["id"]

    def workflow(self, *wftasks: tuple[int, dict]) -> int:
        """A workflow of (task id, wftask body) pairs."""
        workflow_id = self.post(f"{self.project}/workflow/", {"name": f"wf-{time.monotonic_ns()}"})["id"]
        for task_id, body in wftasks:
            self.post(f"{self.project}/workflow/{workflow_id}/wftask/?task_id={task_id}", body)
        return workflow_id

    def submit(self, workflow_id: int, dataset_id: int) -> dict:
        path = f"{self.project}/job/submit/?workflow_id={workflow_id}&dataset_id={dataset_id}"
        return self.post(path, {}, 202)

    def job(self, job_id: int) -> dict:
        return self.get(f"{self.project}/job/{job_id}/?show_tmp_logs=true")

    def stop(self, job_id: int) -> None:
        self.get(f"{self.project}/job/{job_id}/stop/", status=202)

    def wait(self, job_id: int, timeout: float = 90) -> dict:
        return wait_for_job(self.client, self.headers, self.project_id, job_id, timeout)

    def give_settings(self, user_id: int, settings: dict) -> None:
        """As a superuser: set a user's settings."""
        self.post(f"/auth/users/{user_id}/settings/", settings, 200, "patch")

    def give_slurm_user(self, user_id: int, slurm_user: str) -> None:
        """As a superuser: the user's jobs run as `slurm_user`, in its project folder."""
        project_dir = str(self.deployment.project_dirs[slurm_user])
        self.give_settings(user_id, {"slurm_user": slurm_user, "project_dir": project_dir, "slurm_accounts": []})

    def images(self, dataset_id: int) -> list[dict]:
        return self.get(f"{self.project}/dataset/{dataset_id}/export/")["images"]


def make_users(deployment: SlurmDeployment) -> tuple[User, User]:
    """The default admin, whose jobs run as `fractal-user1`, and a new verified
    user, whose jobs run as `fractal-user2`."""
    first, second = TASK_USERS
    admin = User(deployment, DEFAULT_ADMIN, deployment.project_dirs[first])
    admin.give_slurm_user(admin.id, first)
    credentials = ("user2@fractal.xy", "a-password-of-user2")
    user_id = admin.post("/auth/register/", {"email": credentials[0], "password": credentials[1]})["id"]
    admin.post(f"/auth/users/{user_id}/", {"is_verified": True}, 200, "patch")
    admin.give_slurm_user(user_id, second)
    return admin, User(deployment, credentials, deployment.project_dirs[second])


@contextmanager
def running_deployment(name: str, slurm_config: Optional[dict] = None, **environ: str):
    """A started `SlurmDeployment` on a throw-away database, under a new folder of
    TEST_BASE_DIR; at the end, its server is killed and the task users' SLURM
    jobs under that folder are cancelled."""
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    root = TEST_BASE_DIR / f"{name}-{suffix}"
    root.mkdir(mode=0o755)
    with throwaway_database(f"fractal_{name}_{suffix}") as database:
        deployment = SlurmDeployment(root, database, slurm_config, **environ)
        deployment.servers.set_db()
        deployment.start()
        try:
            yield deployment
        finally:
            deployment.kill()
    cancel_jobs_under(root, TASK_USERS)
    shutil.rmtree(root)


def wait_running(user: User, job: dict, task_name: str) -> list[str]:
    """The ids of the SLURM jobs of a task of `job`, once they run (the Fractal job is still submitted)."""
    ids = wait_until(lambda: running_slurm_jobs(job, task_name), 60, f"SLURM jobs of {task_name} to run")
    assert user.job(job["id"])["status"] == "submitted"
    return ids


def server_file(job: dict, *parts: str) -> Path:
    """A file of the job's server-side folder."""
    return Path(job["working_dir"], *parts)


def job_row(database: str, job_id: int) -> tuple:
    """(status, runner_state) of a job, from the database."""
    with postgres(database) as connection:
        return connection.execute("SELECT status, runner_state FROM jobv2 WHERE id = %s", (job_id,)).fetchone()


def check_adoption_after_kill(deployment: SlurmDeployment, user: User) -> None:
    """`kill -9` of the server while a parallel phase (three SLURM jobs of one
    call) waits for a gate file; a new server adopts the job, which ends
    `done` with no SLURM job submitted again and no call run twice."""
    create = user.task("create", non_parallel="create_images.py")
    gated = user.task("gated", parallel="generic_parallel.py")
    gate = deployment.shared / f"adoption-{uuid.uuid4().hex[:8]}.gate"
    workflow_id = user.workflow(
        (create, {"args_non_parallel": {"num_images": 3}}),
        (gated, {"args_parallel": {"wait_for_file": str(gate), "attributes": {"after": "restart"}}}),
    )
    dataset_id = user.dataset("adopted")
    job = user.submit(workflow_id, dataset_id)
    ids = wait_running(user, job, "gated")
    deployment.server.process.send_signal(signal.SIGKILL)
    deployment.server.process.wait(10)
    assert job_row(deployment.servers.database, job["id"])[0] == "submitted"

    deployment.start()
    wait_until(lambda: "Job adopted by server process" in user.job(job["id"])["log"], 60, "adoption")
    gate.touch()
    done = user.wait(job["id"])
    assert done["status"] == "done", done["log"]
    assert [image["attributes"].get("after") for image in user.images(dataset_id)] == ["restart"] * 3
    records = slurm_jobs(done)
    assert set(ids) <= {record["JobId"] for record in records[1:]}
    assert len(records) == 1 + 3
    [subfolder] = server_file(done).glob("1_gated_*")
    for index in range(3):
        assert (subfolder / f"1_par_{index:07d}.log").read_text().count("arguments: ") == 1
