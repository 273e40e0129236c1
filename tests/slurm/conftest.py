"""Fixtures for the slurm backend's tests on the local cluster."""

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from .cluster import SERVICE_ACCOUNT, TASK_USERS, TEST_BASE_DIR, make_owned_dir
from .deployment import running_deployment


@dataclass(frozen=True)
class SharedDirs:
    """Folders of one test: the server's, and one private folder per task user."""

    server: Path
    users: dict[str, Path]


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


@pytest.fixture(scope="module")
def slurm_deployment(slurm_cluster):
    """A server of the slurm backend running as the service account, on a
    throw-away database, for one test module."""
    with running_deployment("deployment") as deployment:
        yield deployment
