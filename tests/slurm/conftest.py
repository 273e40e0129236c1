"""Fixtures for the slurm backend's tests on the local cluster."""

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import throwaway_database

from .cluster import SERVICE_ACCOUNT, TASK_USERS, TEST_BASE_DIR, make_owned_dir
from .deployment import SlurmDeployment


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
    throw-away database, for one test module; the SLURM jobs of its users
    are cancelled at the end."""
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    root = TEST_BASE_DIR / f"deployment-{suffix}"
    root.mkdir(mode=0o755)
    with throwaway_database(f"fractal_slurm_{suffix}") as database:
        deployment = SlurmDeployment(root, database)
        deployment.servers.set_db()
        deployment.start()
        yield deployment
        deployment.kill()
    cancel_jobs_under(root)
    shutil.rmtree(root)


def cancel_jobs_under(root: Path) -> None:
    """Cancel the task users' SLURM jobs whose working directory is under `root` (not other tests' jobs)."""
    listed = subprocess.run(
        ["squeue", "--noheader", "--format=%i %Z", f"--user={','.join(TASK_USERS)}"],
        capture_output=True,
        text=True,
    )
    ids = [
        job_id
        for job_id, workdir in (line.split(maxsplit=1) for line in listed.stdout.splitlines() if line.strip())
        if Path(workdir).is_relative_to(root)
    ]
    if ids:
        subprocess.run(["scancel", *ids], check=True)
