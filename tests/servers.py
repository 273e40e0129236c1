"""Real server processes for end-to-end tests."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

BIN = Path(sys.executable).parent


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


def wait_until(condition, timeout: float, what: str):
    """Poll `condition` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
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
