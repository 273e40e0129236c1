"""Real servers for end-to-end tests: throw-away PostgreSQL databases,
configurations, server processes, and their users over HTTP and through the
`fractal` command line.

The fixtures that use these (`real_servers`, `deployment`, `server`,
`server_user`, `fractal`) are in `tests/conftest.py`.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import psycopg
import pytest
import requests
from psycopg import sql

from fractal_server.app import create_app
from fractal_server.config.errors import FractalConfigurationError

BIN = Path(sys.executable).parent
FRACTALCTL = str(BIN / "fractalctl")
FRACTALCTL_START = [FRACTALCTL, "start", "--port", "{port}"]
"""`fractalctl start` (waitress); `{port}` is replaced by the server's port."""
GUNICORN = [
    str(BIN / "gunicorn"),
    "fractal_server.main:app",
    "--worker-class=fractal_server.gunicorn_fractal.FractalWorker",
    "--bind=127.0.0.1:{port}",
]
"""gunicorn as the deployment guide runs it; add `--workers=N` and other options."""
DEFAULT_ADMIN = ("admin@fractal.xy", "1234")
"""The first superuser that `fractalctl set-db` creates: (email, password)."""

POSTGRES = {
    "host": os.environ.get("FRACTAL_TEST_POSTGRES_HOST", "127.0.0.1"),
    "port": os.environ.get("FRACTAL_TEST_POSTGRES_PORT", "5432"),
    "user": os.environ.get("FRACTAL_TEST_POSTGRES_USER", "postgres"),
}


# --- databases and configurations ----------------------------------------


def postgres(database: str = "postgres") -> psycopg.Connection:
    """An autocommit connection, by default to the maintenance database."""
    return psycopg.connect(dbname=database, autocommit=True, **POSTGRES)


@contextmanager
def throwaway_database(name: str):
    """A new, empty PostgreSQL database `name`, dropped at the end."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with postgres() as connection:
        connection.execute(drop)
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with postgres() as connection:
            connection.execute(drop)


def make_environ(base_dir: Path, database: str) -> dict[str, str]:
    """A complete production-like configuration on PostgreSQL."""
    return {
        "JWT_SECRET_KEY": "a-test-secret-key-that-is-long-enough-for-hs256",
        "POSTGRES_DB": database,
        "POSTGRES_HOST": POSTGRES["host"],
        "POSTGRES_PORT": POSTGRES["port"],
        "POSTGRES_USER": POSTGRES["user"],
        "FRACTAL_TASKS_DIR": str(base_dir / "tasks"),
        "FRACTAL_RUNNER_WORKING_BASE_DIR": str(base_dir / "jobs"),
    }


def startup_error(environ: dict[str, str]) -> str:
    """The one-line configuration error with which an app refuses `environ`."""
    with pytest.raises(FractalConfigurationError) as error:
        create_app(environ=environ)
    message = str(error.value)
    assert "\n" not in message
    return message


# --- processes --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env(env: dict[str, str]) -> dict[str, str]:
    """`env` on top of PATH and HOME: nothing else leaks from the test process."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **env}


def run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 60):
    """Run a command to completion, capturing its text output."""
    return subprocess.run(
        argv, env=process_env(env), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def wait_until(condition, timeout: float = 30, what: str = "a condition", interval: float = 0.05):
    """Poll `condition` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"still waiting after {timeout}s for {what}")


class ServerProcess:
    """A server started with `argv`; its output is collected in `log_path`.

    It runs in its own process group, so that `kill` also ends the processes
    it started (e.g. gunicorn workers).
    """

    def __init__(self, argv: list[str], env: dict[str, str], port: int, cwd: Path, log_path: Path):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv,
                env=process_env(env),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_alive(self, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log()}")
            try:
                return requests.get(f"{self.url}/api/alive/", timeout=2).json()
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        raise AssertionError(f"server not alive after {timeout}s:\n{self.log()}")

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the log after {timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[int]:
        """The ids of the server's child processes (e.g. gunicorn workers)."""
        pgrep = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        )
        return [int(pid) for pid in pgrep.stdout.split()]

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def login(self, credentials: tuple[str, str] = DEFAULT_ADMIN) -> dict[str, str]:
        """Bearer headers of the user with these (email, password)."""
        email, password = credentials
        response = requests.post(
            f"{self.url}/auth/token/login/", data={"username": email, "password": password}, timeout=10
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


class Deployment:
    """One configuration of real servers, and the servers started with it.

    The configuration is `make_environ` on `database`, with the folders (and
    HOME) in `folder`, plus `settings`. Without a database there is none: the
    servers then use a `.fractal_server.env` in `cwd`, or the embedded
    default of `fractalctl start --dev`. Servers of one deployment share its
    database and folders, so a restarted server sees the work of the
    previous one. Used as a context manager, it kills its servers at the end.
    """

    def __init__(self, folder: Path, database: Optional[str] = None, *, cwd: Optional[Path] = None, **settings: str):
        self.folder = folder
        self.database = database
        self.cwd = cwd or folder
        self.env = {"HOME": str(folder), **(make_environ(folder, database) if database else {}), **settings}
        self.tasks_dir = folder / "tasks"
        self.servers: list[ServerProcess] = []
        self._started = 0

    def fractalctl(self, *args: str, timeout: float = 120, **settings: str) -> subprocess.CompletedProcess:
        """Run `fractalctl ARGS...` with this configuration (plus `settings`)."""
        return run([FRACTALCTL, *args], {**self.env, **settings}, self.cwd, timeout=timeout)

    def set_db(self) -> str:
        """`fractalctl set-db`, which must succeed; answer its standard error (its log)."""
        result = self.fractalctl("set-db")
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stderr

    def start(
        self, argv: list[str] = FRACTALCTL_START, *, port: Optional[int] = None, wait: bool = True, **settings: str
    ) -> ServerProcess:
        """Start a server (`{port}` in argv: a free port, unless given) with this
        configuration plus `settings`; unless `wait` is false, wait until it answers."""
        port = port or free_port()
        server = ServerProcess(
            [arg.format(port=port) for arg in argv],
            {**self.env, **settings},
            port,
            self.cwd,
            self.folder / f"server-{self._started}.log",
        )
        self._started += 1
        self.servers.append(server)
        if wait:
            server.wait_alive(timeout=60)
        return server

    def kill_servers(self) -> None:
        """Kill the servers started so far (with their process groups)."""
        while self.servers:
            self.servers.pop().kill()

    def __enter__(self) -> "Deployment":
        return self

    def __exit__(self, *exc_info) -> None:
        self.kill_servers()


# --- the `fractal` command line ---------------------------------------------


class FractalClient:
    """The `fractal` command line (fractal-client 2.5) of one user of a server.

    It runs in `folder`, with a HOME of its own; its session cache is
    `folder / "cache"`.
    """

    def __init__(self, url: str, credentials: tuple[str, str], folder: Path, timeout: float = 120):
        email, password = credentials
        home = folder / "home"
        home.mkdir(exist_ok=True)
        self.folder = folder
        self.timeout = timeout
        self.env = {
            "HOME": str(home),
            "FRACTAL_SERVER": url,
            "FRACTAL_USER": email,
            "FRACTAL_PASSWORD": password,
            "FRACTAL_CACHE_PATH": str(folder / "cache"),
        }

    def __call__(self, *args) -> tuple[int, str, str]:
        """`fractal ARGS...`: (exit code, stdout, stderr)."""
        done = run([str(BIN / "fractal"), *map(str, args)], self.env, self.folder, timeout=self.timeout)
        return done.returncode, done.stdout, done.stderr

    def ok(self, *args) -> str:
        """The standard output of a command that must succeed, stripped."""
        code, out, err = self(*args)
        assert code == 0, f"fractal {' '.join(map(str, args))}:\n{out}{err}"
        return out.strip()

    def ok_json(self, *args):
        """The JSON that a command that must succeed prints."""
        return json.loads(self.ok(*args))


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

    def patch(self, path: str, json=None, headers=None) -> Response:
        return Response(requests.patch(self.url + path, json=json, headers=headers, timeout=30))
