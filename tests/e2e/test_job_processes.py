"""End to end: jobs run by real server processes that are killed, stopped or numerous.

Every test starts real servers (`fractalctl start`, gunicorn) on a throw-away
PostgreSQL database prepared once by `fractalctl set-db`, and talks to them
over HTTP as the default admin. The tasks are the scripts of the mock task
package, run by the local backend as subprocesses of the server.
"""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import requests
from conftest import POSTGRES, make_environ
from psycopg import sql
from runner.conftest import create_task, wait_for_job
from servers import BIN, ServerProcess, free_port, run, wait_until

ADMIN = {"username": "admin@fractal.xy", "password": "1234"}
SHUTDOWN_LOG = "Job stopped due to app shutdown"
FRACTALCTL_START = [str(BIN / "fractalctl"), "start", "--port", "{port}"]
GUNICORN = [
    str(BIN / "gunicorn"),
    "fractal_server.main:app",
    "--worker-class=fractal_server.gunicorn_fractal.FractalWorker",
    "--bind=127.0.0.1:{port}",
]


# --- a throw-away database, set up once by `fractalctl set-db` -------------


def _postgres(database: str = "postgres"):
    return psycopg.connect(dbname=database, autocommit=True, **POSTGRES)


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    name = f"fractal_job_processes_{os.getpid()}"
    with _postgres() as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = tmp_path_factory.mktemp("set-db")
    result = run([str(BIN / "fractalctl"), "set-db"], make_environ(base, name), base, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    yield name
    with _postgres() as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def job_row(database: str, job_id: int) -> dict:
    """The job as stored, read directly (the servers may all be down)."""
    with _postgres(database) as connection:
        status, log, executor_id = connection.execute(
            "SELECT status, log, executor_id FROM jobv2 WHERE id = %s", (job_id,)
        ).fetchone()
    return {"status": status, "log": log or "", "executor_id": executor_id}


# --- servers -------------------------------------------------------------


@pytest.fixture
def start(database, tmp_path):
    """Start a server (`{port}` in argv) on the module's database; all are killed at teardown.

    Servers of one test share their working and data folders, so a restarted
    server sees the jobs of the previous one.
    """
    started: list[ServerProcess] = []

    def start_server(argv=FRACTALCTL_START, **settings) -> ServerProcess:
        port = free_port()
        env = {"HOME": str(tmp_path), **make_environ(tmp_path, database), **settings}
        server = ServerProcess(
            [arg.format(port=port) for arg in argv], env, port, tmp_path, tmp_path / f"server-{len(started)}.log"
        )
        started.append(server)
        server.wait_alive(timeout=60)
        return server

    yield start_server
    for server in started:
        server.kill()
    # Tasks run in sessions of their own: end those a failed test left running.
    for pid, script in list(TASK_PROCESSES):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if alive(pid) and script.encode() in cmdline:
            kill_task(pid)
    TASK_PROCESSES.clear()


class Response:
    """A `requests` response seen as a Flask test response (`.json` is the body)."""

    def __init__(self, response: requests.Response):
        self.status_code = response.status_code
        self.text = response.text
        try:
            self.json = response.json()
        except ValueError:
            self.json = None


class Client:
    """HTTP to a real server, with the interface of Flask's test client.

    So the helpers of `tests/runner/conftest.py` (`create_task`,
    `wait_for_job`) work unchanged against real servers.
    """

    def __init__(self, url: str):
        self.url = url

    def get(self, path: str, headers=None, query_string=None) -> Response:
        return Response(requests.get(self.url + path, headers=headers, params=query_string, timeout=30))

    def post(self, path: str, json=None, headers=None) -> Response:
        return Response(requests.post(self.url + path, json=json, headers=headers, timeout=30))


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

    def dataset(self, name: str) -> int:
        return self.post(f"{self.project}/dataset/", {"name": name, "zarr_dir": str(self.data_dir / name)})["id"]

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


def task_processes(server: ServerProcess, script: str) -> list[int]:
    """The server's child processes running the mock script `script`."""
    return task_processes_of(server.process.pid, script)


def task_processes_of(parent: int, script: str) -> list[int]:
    """The child processes of `parent` running the mock script `script`."""
    pgrep = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
    pids = []
    for pid in map(int, pgrep.stdout.split()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if script.encode() in cmdline:
            pids.append(pid)
            TASK_PROCESSES.add((pid, script))
    return pids


def kill_task(pid: int) -> None:
    """Kill a task process; it leads its own session, hence its own group."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    wait_until(lambda: not alive(pid), 10, f"task process {pid} to die")


def running_task(admin: Admin, server: ServerProcess, job_id: int, script: str) -> int:
    """Wait until the job runs its task; answer the task's process id."""
    wait_until(
        lambda: "SUBMIT 0-th task" in (admin.job(job_id, show_tmp_logs=True)["log"] or ""), 30, f"job {job_id} to start"
    )
    [pid] = wait_until(lambda: task_processes(server, script), 30, f"the task process of job {job_id}")
    return pid


# --- the tests ------------------------------------------------------------


def test_sigkilled_server_job_fails_at_restart_and_dataset_is_usable_again(start, database, tmp_path):
    server = start()
    admin = Admin(server, tmp_path / "data")
    task_id = admin.task("generic_non_parallel.py")
    dataset_id = admin.dataset("killed")
    job = admin.submit(admin.workflow(task_id, {"sleep": 20}), dataset_id)
    task_pid = running_task(admin, server, job["id"], "generic_non_parallel.py")
    assert Path(job["working_dir"], "workflow.log").is_file()

    server_pid = server.process.pid
    os.kill(server_pid, signal.SIGKILL)
    assert server.process.wait(10) == -signal.SIGKILL
    stored = job_row(database, job["id"])
    assert stored["status"] == "submitted"
    assert stored["executor_id"].startswith(f"{socket.gethostname()}:{server_pid}:")
    # The task runs in its own session: the server's death did not end it.
    assert alive(task_pid)
    kill_task(task_pid)

    restarted = start()
    admin.use(restarted)
    failed = admin.job(job["id"])
    assert failed["status"] == "failed"
    assert f"the server process that ran it ({stored['executor_id']}) is no longer running" in failed["log"]
    assert failed["end_timestamp"] is not None
    assert f"Job {job['id']} failed: its server process" in restarted.log()

    again = admin.submit(admin.workflow(task_id, {}), dataset_id)
    done = admin.wait(again["id"])
    assert done["status"] == "done", done["log"]
    assert job_row(database, again["id"])["executor_id"].startswith(f"{socket.gethostname()}:{restarted.process.pid}:")


def test_sigterm_lets_short_jobs_finish_and_fails_long_ones_after_the_grace_time(start, database, tmp_path):
    grace = 6
    server = start(FRACTAL_GRACEFUL_SHUTDOWN_TIME=str(grace))
    admin = Admin(server, tmp_path / "data")
    task_id = admin.task("generic_non_parallel.py")
    long_job = admin.submit(admin.workflow(task_id, {"sleep": 120}), admin.dataset("long"))
    short_job = admin.submit(admin.workflow(task_id, {"sleep": 3}), admin.dataset("short"))
    for job in (long_job, short_job):
        wait_until(
            lambda: "SUBMIT 0-th task" in (admin.job(job["id"], show_tmp_logs=True)["log"] or ""),
            30,
            f"job {job['id']} to start",
        )

    def both_tasks():
        pids = task_processes(server, "generic_non_parallel.py")
        return pids if len(pids) == 2 else None

    pids = wait_until(both_tasks, 30, "both task processes")

    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    returncode = server.process.wait(grace + 30)
    elapsed = time.monotonic() - started
    assert returncode == 0, server.log()
    assert grace - 0.5 < elapsed < grace + 10, server.log()
    assert f"Waiting up to {grace}s for 2 running job(s)" in server.log()

    short = job_row(database, short_job["id"])
    assert short["status"] == "done", short["log"]
    assert 'END workflow "' in short["log"]
    long = job_row(database, long_job["id"])
    assert long["status"] == "failed"
    assert long["log"].endswith(f"\n{SHUTDOWN_LOG}\n"), long["log"]
    # The long job's task was stopped, not left running without a server.
    wait_until(lambda: not any(alive(pid) for pid in pids), 10, "the task processes to end")


def test_sigterm_stops_jobs_at_once_with_a_stoppable_backend(start, database, tmp_path):
    grace = 60
    server = start(FRACTAL_RUNNER_BACKEND="local_experimental", FRACTAL_GRACEFUL_SHUTDOWN_TIME=str(grace))
    admin = Admin(server, tmp_path / "data")
    task_id = admin.task("generic_non_parallel.py")
    job = admin.submit(admin.workflow(task_id, {"sleep": 120}), admin.dataset("stopped"))
    task_pid = running_task(admin, server, job["id"], "generic_non_parallel.py")

    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(grace) == 0, server.log()
    assert time.monotonic() - started < 15, server.log()
    assert not alive(task_pid)
    stored = job_row(database, job["id"])
    assert stored["status"] == "failed"
    assert stored["log"].startswith(f"JOB ERROR in Fractal job {job['id']}:"), stored["log"]
    assert stored["log"].endswith(f"\n{SHUTDOWN_LOG}\n"), stored["log"]


def test_two_gunicorn_workers_run_each_job_once_and_record_jobs_stopped_by_sigterm(start, database, tmp_path):
    """Two workers claim jobs from the same database: each job runs exactly once.

    Then SIGTERM: gunicorn kills its workers `--graceful-timeout` seconds
    later, so a running job must be stopped and recorded before that, even
    though FRACTAL_GRACEFUL_SHUTDOWN_TIME is longer.
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

    long_job = admin.submit(admin.workflow(admin.task("generic_non_parallel.py"), {"sleep": 120}), admin.dataset("long"))
    wait_until(
        lambda: "SUBMIT 0-th task" in (admin.job(long_job["id"], show_tmp_logs=True)["log"] or ""), 30, "the long job"
    )
    [task_pid] = wait_until(
        lambda: [pid for worker in workers for pid in task_processes_of(worker, "generic_non_parallel.py")],
        30,
        "the long job's task process",
    )
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(graceful_timeout + 30) == 0, server.log()
    assert time.monotonic() - started < graceful_timeout, server.log()
    assert "Running jobs get 4s instead of FRACTAL_GRACEFUL_SHUTDOWN_TIME=60s" in server.log()
    assert server.log().count("Fractal server process shut down") == 2  # neither worker was killed
    stored = job_row(database, long_job["id"])
    assert stored["status"] == "failed"
    assert stored["log"].endswith(f"\n{SHUTDOWN_LOG}\n"), stored["log"]
    wait_until(lambda: not alive(task_pid), 10, "the task process to end")
