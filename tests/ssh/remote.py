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
