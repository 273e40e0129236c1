"""Fixtures of the slurm_ssh tests: the loopback sshd, connections to it, remote folders."""
import subprocess
import uuid

import pytest
from fractal_server_slurm_ssh_backend.connection import SSHConnection, SSHTarget

from .remote import ADDRESS, KEY, KNOWN_HOSTS, PORT, REMOTE_HOME, REMOTE_USER, SCRIPT, as_root, sshd


@pytest.fixture(scope="session")
def sshd_running():
    """Fail (not skip) when the test sshd does not answer: `./scripts/test` starts it."""
    result = subprocess.run([str(SCRIPT), "status"], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        pytest.fail(f"the test sshd does not work ({result.stdout.strip()}); run `scripts/sshd-for-tests start`")


@pytest.fixture
def restart_sshd_at_the_end(sshd_running):
    """For tests that stop the sshd: it answers again afterwards, whatever happened."""
    yield
    if subprocess.run([str(SCRIPT), "status"], capture_output=True, timeout=60).returncode != 0:
        sshd("start")


@pytest.fixture
def target(sshd_running) -> SSHTarget:
    return SSHTarget(ADDRESS, PORT, REMOTE_USER, str(KEY), str(KNOWN_HOSTS))


@pytest.fixture
def connection(target):
    connection = SSHConnection(target)
    yield connection
    connection.close()


@pytest.fixture
def remote_dir(sshd_running) -> str:
    """A new folder path in the remote user's private home (not created); removed at the end."""
    path = REMOTE_HOME / f"test-{uuid.uuid4().hex[:12]}"
    yield str(path)
    as_root(["rm", "-rf", str(path)])
