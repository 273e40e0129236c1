"""The loopback SSH server of `scripts/sshd-for-tests`, seen from tests."""
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "scripts" / "sshd-for-tests"
ADDRESS = "127.0.0.1"
PORT = 2222
REMOTE_USER = "fractal-remote"
REMOTE_HOME = Path("/home") / REMOTE_USER
CLIENT_DIR = Path("/var/lib/fractal-ssh-tests")
"""Readable by the service account only."""
KEY = CLIENT_DIR / f"{REMOTE_USER}_ed25519"
KNOWN_HOSTS = CLIENT_DIR / "known_hosts"


def sshd(command: str) -> None:
    """`scripts/sshd-for-tests start|stop`, which must succeed."""
    result = subprocess.run([str(SCRIPT), command], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def as_root(argv: list[str]) -> subprocess.CompletedProcess:
    """Look at the remote side directly (the tests run as root)."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


REMOTE_PYTHON = "/usr/bin/python3"
"""Debian's Python on the remote side: it runs the call wrapper, and builds task environments."""
REMOTE_PYTHON_VERSION = subprocess.run(
    [REMOTE_PYTHON, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
    capture_output=True,
    text=True,
    check=True,
).stdout.strip()


def server_environ(**more: str) -> dict[str, str]:
    """The settings of a `slurm_ssh` server that reaches the test sshd."""
    return {
        "FRACTAL_RUNNER_BACKEND": "slurm_ssh",
        "FRACTAL_SLURM_WORKER_PYTHON": REMOTE_PYTHON,
        "FRACTAL_SSH_KNOWN_HOSTS_FILE": str(KNOWN_HOSTS),
        "FRACTAL_TASKS_PYTHON_DEFAULT_VERSION": REMOTE_PYTHON_VERSION,
        f"FRACTAL_TASKS_PYTHON_{REMOTE_PYTHON_VERSION.replace('.', '_')}": REMOTE_PYTHON,
        **more,
    }


def ssh_settings(root: str, ssh_host: str = f"{ADDRESS}:{PORT}") -> dict:
    """User settings for the remote user, with `ssh_tasks_dir` and `ssh_jobs_dir` under `root`."""
    return {
        "ssh_host": ssh_host,
        "ssh_username": REMOTE_USER,
        "ssh_private_key_path": str(KEY),
        "ssh_tasks_dir": f"{root}/tasks",
        "ssh_jobs_dir": f"{root}/jobs",
        "slurm_accounts": [],
    }
