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


class ServerProcess:
    """A server started with `argv`; its output is collected in `log_path`."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, cwd: Path, log_path: Path):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        full_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **env}
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv, env=full_env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_alive(self, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log()}")
            try:
                return requests.get(f"{self.url}/api/alive/", timeout=2).json()
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError(f"server not alive after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
