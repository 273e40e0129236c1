"""End to end: jobs run by real server processes that are killed, stopped or numerous.

Every test starts real servers (`fractalctl start`, gunicorn) on a throw-away
PostgreSQL database prepared once by `fractalctl set-db`, and talks to them
over HTTP as the default admin. The tasks are the scripts of the mock task
package, run by the local backend as subprocesses of the server.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from runner.conftest import create_task, wait_for_job
from servers import GUNICORN, Client, ServerProcess, postgres, wait_until

ADMIN = {"username": "admin@fractal.xy", "password": "1234"}


# --- a throw-away database, set up once by `fractalctl set-db` -------------


@pytest.fixture(scope="module")
def database(deployment):
    return deployment.database


def job_row(database: str, job_id: int) -> dict:
    """The job as stored, read directly (the servers may all be down)."""
    with postgres(database) as connection:
        status, log, executor_id = connection.execute(
            "SELECT status, log, executor_id FROM jobv2 WHERE id = %s", (job_id,)
        ).fetchone()
    return {"status": status, "log": log or "", "executor_id": executor_id}


# --- servers -------------------------------------------------------------


@pytest.fixture
def start(deployment):
    """`start(argv=FRACTALCTL_START, **settings)`: start a server on the module's deployment and
    wait until it answers; all are killed at teardown.

    Servers share their working and data folders, so a restarted server sees
    the jobs of the previous one.
    """
    yield deployment.start
    deployment.kill_servers()
    # Tasks run in sessions of their own: end those a failed test left running.
    for pid, script in list(TASK_PROCESSES):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if alive(pid) and script.encode() in cmdline:
            kill_task(pid)
    TASK_PROCESSES.clear()


class Admin:
    """The default admin's view of a server: one project, shortcuts for jobs."""

    def __init__(self, server: ServerProcess, data_dir: Path):
        self.use(server)
        self.data_dir = data_dir
        self.project_id = self.post("/api/v2/project/", {"name": f"project-{time.monotonic_ns()}"})["id"]

    def use(self, server: ServerProcess) -> None:
        """Talk to `server` from now on (e.g. after a restart)."""
        self.client = Client(server.url)
        login = requests.post(f"{server.url}/auth/token/login/", data=ADMIN, timeout=30)
        assert login.status_code == 200, login.text
        self.headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

    def post(self, path: str, body: dict, status: int = 201) -> dict:
        response = self.client.post(path, json=body, headers=self.headers)
        assert response.status_code == status, response.text
        return response.json

    @property
    def project(self) -> str:
        return f"/api/v2/project/{self.project_id}"

    def task(self, script: str) -> int:
        """A new non-parallel task running the mock script."""
        return create_task(self.client, self.headers, f"{script}-{time.monotonic_ns()}", non_parallel=script)

    def dataset(self, name: str, images: int = 0) -> int:
        """A new dataset, with `images` images `<zarr_dir>/img<i>`."""
        zarr_dir = self.data_dir / name
        dataset_id = self.post(f"{self.project}/dataset/", {"name": name, "zarr_dir": str(zarr_dir)})["id"]
        for index in range(images):
            self.post(f"{self.project}/dataset/{dataset_id}/images/", {"zarr_url": f"{zarr_dir}/img{index}"})
        return dataset_id

    def dataset_state(self, dataset_id: int) -> tuple[list, list]:
        """The dataset's images and history, its folder name left out (to compare datasets)."""
        folder = self.client.get(f"{self.project}/dataset/{dataset_id}/", headers=self.headers).json
        exported = self.client.get(f"{self.project}/dataset/{dataset_id}/export/", headers=self.headers).json
        text = json.dumps([exported["images"], folder["history"]]).replace(folder["zarr_dir"], "<zarr_dir>")
        return tuple(json.loads(text))

    def workflow(self, task_id: int, args: dict) -> int:
        workflow_id = self.post(f"{self.project}/workflow/", {"name": f"wf-{time.monotonic_ns()}"})["id"]
        self.post(f"{self.project}/workflow/{workflow_id}/wftask/?task_id={task_id}", {"args_non_parallel": args})
        return workflow_id

    def submit(self, workflow_id: int, dataset_id: int) -> dict:
        return self.post(f"{self.project}/job/submit/?workflow_id={workflow_id}&dataset_id={dataset_id}", {}, 202)

    def job(self, job_id: int, **query) -> dict:
        response = self.client.get(f"{self.project}/job/{job_id}/", headers=self.headers, query_string=query)
        assert response.status_code == 200, response.text
        return response.json

    def wait(self, job_id: int, timeout: float = 60) -> dict:
        return wait_for_job(self.client, self.headers, self.project_id, job_id, timeout)


# --- task processes --------------------------------------------------------


TASK_PROCESSES: set[tuple[int, str]] = set()
"""The task processes seen by this test, as (pid, script)."""


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that does not reap it is dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def task_processes(job: dict, script: str) -> list[int]:
    """The processes running the mock script `script` for `job` (its arguments file is in the job folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if script.encode() in cmdline and job["working_dir"].encode() in cmdline and b"--args-json" in cmdline:
            pids.append(int(entry.name))
            TASK_PROCESSES.add((int(entry.name), script))
    return pids


def kill_task(pid: int) -> None:
    """Kill a task process and its call wrapper: the wrapper leads the group."""
    try:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except ProcessLookupError:
        pass
    wait_until(lambda: not alive(pid), 10, f"task process {pid} to die")


def running_task(admin: Admin, job: dict, script: str) -> int:
    """Wait until the job runs its task; answer the task's process id."""
    wait_until(
        lambda: "SUBMIT 0-th task" in (admin.job(job["id"], show_tmp_logs=True)["log"] or ""), 30, f"job {job['id']} to start"
    )
    [pid] = wait_until(lambda: task_processes(job, script), 30, f"the task process of job {job['id']}")
    return pid


def gated_append(admin: Admin, tmp_path: Path, name: str) -> tuple[int, Path, Path]:
    """A workflow whose task waits for a gate file, then appends a line to a ledger (exactly-once check)."""
    gate, ledger = tmp_path / f"{name}.gate", tmp_path / f"{name}.ledger"
    workflow_id = admin.workflow(admin.task("append_line.py"), {"path": str(ledger), "line": name, "wait_for_file": str(gate)})
    return workflow_id, gate, ledger


def gated_parallel_workflow(admin: Admin, gate: Path, ledger: Path) -> int:
    """Parallel, then parallel calls that wait for `gate` and append to `ledger`, then compound."""
    tasks = {
        script: create_task(admin.client, admin.headers, f"{script}-{time.monotonic_ns()}", parallel=script)
        for script in ("generic_parallel.py", "append_line.py")
    }
    compound = create_task(
        admin.client,
        admin.headers,
        f"compound-{time.monotonic_ns()}",
        non_parallel="generic_compound_init.py",
        parallel="generic_compound_compute.py",
    )
    workflow_id = admin.post(f"{admin.project}/workflow/", {"name": f"wf-{time.monotonic_ns()}"})["id"]
    for task_id, body in (
        (tasks["generic_parallel.py"], {"args_parallel": {"attributes": {"seen": True}}}),
        (tasks["append_line.py"], {"args_parallel": {"path": str(ledger), "line": "call", "wait_for_file": str(gate)}}),
        (compound, {}),
    ):
        admin.post(f"{admin.project}/workflow/{workflow_id}/wftask/?task_id={task_id}", body)
    return workflow_id


def reinstall_fractal_server() -> None:
    """`pip install` of the same version, as in an upgrade."""
    root = Path(__file__).parents[2]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(root)],
        check=True,
        timeout=300,
    )


# --- the tests ------------------------------------------------------------


@pytest.mark.parametrize("interruption", ["SIGKILL", "SIGTERM, pip install, start"])
def test_a_parallel_phase_outlives_the_server(start, database, tmp_path, interruption):
    """The job ends `done` with the images and history of an uninterrupted run, and no call ran twice."""
    server = start()
    admin = Admin(server, tmp_path / "data")
    gate, ledger = tmp_path / f"{interruption}.gate", tmp_path / f"{interruption}.ledger"
    workflow_id = gated_parallel_workflow(admin, gate, ledger)
    interrupted, reference = admin.dataset("interrupted", images=4), admin.dataset("reference", images=4)
    job = admin.submit(workflow_id, interrupted)
    calls = wait_until(lambda: len(pids := task_processes(job, "append_line.py")) == 4 and pids, 30, "4 calls")

    if interruption == "SIGKILL":
        held_by = job_row(database, job["id"])["executor_id"]
        assert held_by.startswith(f"{socket.gethostname()}:{server.process.pid}:")
        os.kill(server.process.pid, signal.SIGKILL)
        assert server.process.wait(10) == -signal.SIGKILL
    else:
        assert server.stop(signal.SIGTERM) == 0, server.log()
        reinstall_fractal_server()
        assert job_row(database, job["id"])["executor_id"] is None
    assert all(alive(pid) for pid in calls)
    restarted = start()
    admin.use(restarted)
    if interruption == "SIGKILL":
        restarted.wait_for_log(f"Job {job['id']}: its server process {held_by} is no longer running")
    wait_until(lambda: "Job adopted by server process" in admin.job(job["id"], show_tmp_logs=True)["log"], 30, "adoption")
    gate.touch()
    done = admin.wait(job["id"])
    assert done["status"] == "done", done["log"]
    assert ledger.read_text().splitlines() == ["call"] * 4

    uninterrupted = admin.wait(admin.submit(workflow_id, reference)["id"])
    assert uninterrupted["status"] == "done", uninterrupted["log"]
    assert admin.dataset_state(interrupted) == admin.dataset_state(reference)
    images, history = admin.dataset_state(interrupted)
    assert len(images) == 8 and [item["status"] for item in history] == ["done"] * 3


def test_a_gunicorn_worker_killed_during_a_job_the_other_adopts_it(start, database, tmp_path):
    server = start([*GUNICORN, "--workers=2"])
    workers = wait_until(lambda: len(pids := server.children()) == 2 and set(pids), 30, "two gunicorn workers")
    admin = Admin(server, tmp_path / "data")
    workflow_id, gate, ledger = gated_append(admin, tmp_path, "worker")
    job = admin.submit(workflow_id, admin.dataset("worker"))
    task_pid = running_task(admin, job, "append_line.py")
    holder = int(job_row(database, job["id"])["executor_id"].split(":")[1])
    assert holder in workers
    os.kill(holder, signal.SIGKILL)

    def adopted():
        executor = job_row(database, job["id"])["executor_id"]
        return executor is not None and int(executor.split(":")[1]) != holder and executor

    executor = wait_until(adopted, 60, "another worker to adopt the job")
    assert alive(task_pid)
    gate.touch()
    done = admin.wait(job["id"])
    assert done["status"] == "done", done["log"]
    assert ledger.read_text() == "worker\n"
    print(f"job {job['id']}: worker {holder} killed, adopted by {executor}")


def test_sigterm_detaches_running_jobs_and_the_next_server_adopts_them(start, database, tmp_path):
    grace = 20
    server = start(FRACTAL_GRACEFUL_SHUTDOWN_TIME=str(grace))
    admin = Admin(server, tmp_path / "data")
    jobs = []
    for name in ("one", "two"):
        workflow_id, gate, ledger = gated_append(admin, tmp_path, name)
        job = admin.submit(workflow_id, admin.dataset(name))
        jobs.append((job, gate, ledger, running_task(admin, job, "append_line.py")))

    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(grace + 30) == 0, server.log()
    assert time.monotonic() - started < grace, server.log()
    assert f"Detaching 2 running job(s), within {grace}s" in server.log()
    for job, _, _, task_pid in jobs:
        assert job_row(database, job["id"]) == {"status": "submitted", "log": "", "executor_id": None}
        assert alive(task_pid)

    admin.use(start())
    for job, gate, ledger, _ in jobs:
        gate.touch()
        done = admin.wait(job["id"])
        assert done["status"] == "done", done["log"]
        assert "the job's calls keep running, for the next one to adopt" in done["log"]
        assert ledger.read_text().splitlines() == [ledger.stem]


def test_stop_reaches_a_job_whose_server_died(start, database, tmp_path):
    server = start(FRACTAL_RUNNER_BACKEND="local_experimental")
    admin = Admin(server, tmp_path / "data")
    workflow_id, _, ledger = gated_append(admin, tmp_path, "stopped")
    job = admin.submit(workflow_id, admin.dataset("stopped"))
    task_pid = running_task(admin, job, "append_line.py")
    server.kill()

    admin.use(start(FRACTAL_RUNNER_BACKEND="local_experimental"))
    response = admin.client.get(f"{admin.project}/job/{job['id']}/stop/", headers=admin.headers)
    assert response.status_code == 202, response.text
    stopped = admin.wait(job["id"])
    assert stopped["status"] == "failed"
    assert stopped["log"].startswith(f"JOB ERROR in Fractal job {job['id']}:"), stopped["log"]
    assert "BrokenProcessPool" in stopped["log"]
    wait_until(lambda: not alive(task_pid), 10, "the task process to end")
    assert not ledger.exists()


def test_two_gunicorn_workers_run_each_job_once_and_detach_jobs_at_sigterm(start, database, tmp_path):
    """Two workers claim jobs from the same database: each job runs exactly once.

    Then SIGTERM: gunicorn kills its workers `--graceful-timeout` seconds
    later; a running job detaches well before that.
    """
    graceful_timeout = 12
    server = start(
        [*GUNICORN, "--workers=2", f"--graceful-timeout={graceful_timeout}"], FRACTAL_GRACEFUL_SHUTDOWN_TIME="60"
    )

    def two_workers():
        pids = server.children()
        return set(pids) if len(pids) == 2 else None

    workers = wait_until(two_workers, 30, "two gunicorn workers")
    admin = Admin(server, tmp_path / "data")
    task_id = admin.task("append_line.py")
    ledger = tmp_path / "ledger.txt"
    markers = [f"dataset-{index}" for index in range(6)]
    jobs = [
        admin.submit(admin.workflow(task_id, {"path": str(ledger), "line": marker, "sleep": 0.5}), admin.dataset(marker))
        for marker in markers
    ]
    ended = [admin.wait(job["id"], timeout=90) for job in jobs]
    assert [job["status"] for job in ended] == ["done"] * len(jobs), [job["log"] for job in ended]
    assert sorted(ledger.read_text().splitlines()) == sorted(markers)
    executors = {job_row(database, job["id"])["executor_id"] for job in jobs}
    # Which worker takes which job is up to them; both usually take part.
    assert {int(executor.split(":")[1]) for executor in executors} <= workers, (executors, workers)
    print(f"executors of the {len(jobs)} jobs: {sorted(executors)}")

    workflow_id, _, _ = gated_append(admin, tmp_path, "long")
    long_job = admin.submit(workflow_id, admin.dataset("long"))
    task_pid = running_task(admin, long_job, "append_line.py")
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(graceful_timeout + 30) == 0, server.log()
    assert time.monotonic() - started < graceful_timeout, server.log()
    assert "Running jobs get 4s instead of FRACTAL_GRACEFUL_SHUTDOWN_TIME=60s" in server.log()
    assert server.log().count("Fractal server process shut down") == 2  # neither worker was killed
    assert job_row(database, long_job["id"]) == {"status": "submitted", "log": "", "executor_id": None}
    assert alive(task_pid)
