"""The local cluster and the accounts work as the slurm backend needs them to.

The server's service account submits jobs as each task user through sudo, the
jobs run as that user, finished states are visible with `squeue --states=all`,
and no account can read or write where it should not.
"""

import os
import pwd
import shutil
import sys
from pathlib import Path

import pytest

from .cluster import (
    SERVICE_ACCOUNT,
    TASK_USERS,
    as_service_account,
    as_task_user,
    run,
    wait_for_final_state,
)

pytestmark = pytest.mark.usefixtures("slurm_cluster")
USER1, USER2 = TASK_USERS


def server_script(shared_dirs, name: str, body: str) -> Path:
    """A submission script written on the server side, as the server would."""
    path = shared_dirs.server / name
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(0o644)
    shutil.chown(path, user=SERVICE_ACCOUNT, group=SERVICE_ACCOUNT)
    return path


def submit(user: str, script: Path, workdir: Path, *options: str) -> str:
    result = as_task_user(
        user,
        [
            "sbatch",
            "--parsable",
            f"--chdir={workdir}",
            f"--output={workdir}/slurm_%j.out",
            f"--error={workdir}/slurm_%j.err",
            "--mem=16M",
            "--time=1",
            *options,
            str(script),
        ],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().isdigit(), result.stdout
    return result.stdout.strip()


def test_a_job_submitted_for_a_task_user_runs_as_that_user(shared_dirs):
    workdir = shared_dirs.users[USER1]
    script = server_script(shared_dirs, "whoami.sh", "id -un > whoami\n")
    job_id = submit(USER1, script, workdir)
    assert wait_for_final_state(job_id) == "COMPLETED"
    assert (workdir / "whoami").read_text() == f"{USER1}\n"
    assert (workdir / "whoami").stat().st_uid == pwd.getpwnam(USER1).pw_uid
    assert (workdir / f"slurm_{job_id}.out").exists()


def test_a_failing_job_ends_failed_with_its_stderr(shared_dirs):
    workdir = shared_dirs.users[USER2]
    script = server_script(shared_dirs, "fail.sh", "echo broken >&2\nexit 3\n")
    job_id = submit(USER2, script, workdir)
    assert wait_for_final_state(job_id) == "FAILED"
    assert (workdir / f"slurm_{job_id}.err").read_text() == "broken\n"


def test_impossible_requests_are_rejected_at_submission(shared_dirs):
    script = server_script(shared_dirs, "never.sh", "true\n")
    result = as_task_user(
        USER1,
        [
            "sbatch",
            "--parsable",
            f"--chdir={shared_dirs.users[USER1]}",
            f"--ntasks={os.cpu_count() + 1}",
            "--mem=16M",
            str(script),
        ],
    )
    assert result.returncode != 0
    assert "More processors requested than permitted" in result.stderr


def private_folders(shared_dirs, user: str) -> list[Path]:
    return [Path(pwd.getpwnam(user).pw_dir), shared_dirs.users[user]]


@pytest.mark.parametrize("which", ["home", "project"])
def test_task_users_cannot_read_each_other_folders(shared_dirs, which):
    folder = dict(zip(["home", "project"], private_folders(shared_dirs, USER1)))[which]
    secret = folder / f"secret-{os.getpid()}"
    assert as_task_user(USER1, ["touch", str(secret)]).returncode == 0
    try:
        assert as_task_user(USER1, ["cat", str(secret)]).returncode == 0
        for argv in (["ls", str(folder)], ["cat", str(secret)]):
            result = as_task_user(USER2, argv)
            assert result.returncode != 0
            assert "Permission denied" in result.stderr
    finally:
        secret.unlink()


@pytest.mark.parametrize("user", TASK_USERS)
def test_the_service_account_cannot_write_into_task_users_folders(shared_dirs, user):
    for folder in private_folders(shared_dirs, user):
        result = as_service_account(["touch", str(folder / "from-the-server")])
        assert result.returncode != 0
        assert "Permission denied" in result.stderr
        assert not (folder / "from-the-server").exists()


def test_sudo_takes_the_spec_options_and_sets_the_users_home():
    result = as_service_account(
        ["sudo", "--set-home", "--non-interactive", "-u", USER2, "printenv", "HOME"]
    )
    assert (result.returncode, result.stdout) == (0, f"{pwd.getpwnam(USER2).pw_dir}\n")


@pytest.mark.parametrize(
    "caller, target",
    [(SERVICE_ACCOUNT, "root"), (SERVICE_ACCOUNT, "nobody"), (USER1, USER2), (USER2, USER1)],
)
def test_nobody_else_gets_sudo(caller, target):
    result = run(["runuser", "-u", caller, "--", "sudo", "--non-interactive", "-u", target, "true"])
    assert result.returncode == 1
    assert "password is required" in result.stderr or "not allowed" in result.stderr


def test_the_service_account_can_run_the_python_of_the_tests():
    result = as_service_account(
        [sys.executable, "-c", "import fractal_server_slurm_backend, fractal_server"]
    )
    assert result.returncode == 0, result.stderr
