"""Fixtures for the slurm backend's tests on the local cluster."""

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from .cluster import SERVICE_ACCOUNT, TASK_USERS, TEST_BASE_DIR


@pytest.fixture(scope="session")
def slurm_cluster():
    """Fail (not skip) when the cluster is down: `./scripts/test` starts it."""
    result = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if "is UP" not in result.stdout:
        pytest.fail("no SLURM controller answers; run `scripts/slurm-cluster start` as root")


@dataclass(frozen=True)
class SharedDirs:
    """Folders of one test: the server's, and one private folder per task user."""

    server: Path
    users: dict[str, Path]


def make_owned_dir(path: Path, owner: str, mode: int) -> Path:
    path.mkdir(mode=mode)
    path.chmod(mode)
    shutil.chown(path, user=owner, group=owner)
    return path


@pytest.fixture
def shared_dirs() -> SharedDirs:
    """Under the base folder every account can enter: `server/` (the service
    account's, readable by all) and `<user>/` (private to each task user)."""
    root = TEST_BASE_DIR / f"test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o755)
    dirs = SharedDirs(
        server=make_owned_dir(root / "server", SERVICE_ACCOUNT, 0o755),
        users={user: make_owned_dir(root / user, user, 0o700) for user in TASK_USERS},
    )
    yield dirs
    shutil.rmtree(root)
