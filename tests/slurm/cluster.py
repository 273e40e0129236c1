"""The local SLURM cluster of `scripts/slurm-cluster` and its accounts, seen from tests.

The tests run as root. Commands of the server run as the service account
(`runuser`), and commands of a task user go from the service account through
`sudo --non-interactive -u <user>`, as in production.
"""

import re
import shutil
import subprocess
import time
from pathlib import Path

from fractal_server_slurm_backend.squeue import FINAL_STATES

SERVICE_ACCOUNT = "fractal-svc"
TASK_USERS = ("fractal-user1", "fractal-user2")
TEST_BASE_DIR = Path("/tmp/fractal-slurm-tests")
"""Made by `scripts/slurm-cluster`; unlike pytest's tmp_path, every account can enter it."""
JOBCOMP_LOG = Path("/var/log/slurm/jobcomp.log")
"""slurmctld's job-completion log: the tests' oracle of which SLURM jobs ran and how they
ended (real clusters do not have it; the backends never read it)."""


def make_owned_dir(path: Path, owner: str, mode: int) -> Path:
    path.mkdir(mode=mode)
    path.chmod(mode)
    shutil.chown(path, user=owner, group=owner)
    return path


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def as_service_account(argv: list[str]) -> subprocess.CompletedProcess:
    return run(["runuser", "-u", SERVICE_ACCOUNT, "--", *argv])


def as_task_user(user: str, argv: list[str]) -> subprocess.CompletedProcess:
    """Run argv as `user`, through the service account's sudo rule."""
    return as_service_account(["sudo", "--non-interactive", "-u", user, *argv])


def job_state(job_id: str) -> str:
    """The job's state as the service account sees it, finished jobs included."""
    result = as_service_account(
        ["squeue", "--noheader", "--format=%T", f"--jobs={job_id}", "--states=all"]
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def wait_for_final_state(job_id: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while (state := job_state(job_id)) not in FINAL_STATES:
        assert time.monotonic() < deadline, f"SLURM job {job_id} still {state!r}"
        time.sleep(0.3)
    return state


def slurm_jobs(job: dict) -> list[dict]:
    """The finished SLURM jobs of a Fractal job (jobcomp records of its user-side folder), in order."""
    records = []
    for line in JOBCOMP_LOG.read_text().splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if fields.get("WorkDir") == job["working_dir_user"]:
            records.append(fields)
    return records


def running_slurm_jobs(job: dict, task_name: str) -> list[str]:
    """The running SLURM jobs of a Fractal job's task (SLURM job names are task names)."""
    listed = run(["squeue", "--noheader", "--format=%i %j %Z", "--states=RUNNING"])
    return [
        job_id
        for job_id, name, workdir in (line.split(maxsplit=2) for line in listed.stdout.splitlines())
        if workdir == job["working_dir_user"] and name.startswith(f"{task_name}-")
    ]


def cancel_jobs_under(root: Path, users: tuple[str, ...]) -> None:
    """Cancel the SLURM jobs of `users` whose working directory is under `root` (not other tests' jobs)."""
    listed = run(["squeue", "--noheader", "--format=%i %Z", f"--user={','.join(users)}"])
    ids = [
        job_id
        for job_id, workdir in (line.split(maxsplit=1) for line in listed.stdout.splitlines() if line.strip())
        if Path(workdir).is_relative_to(root)
    ]
    if ids:
        subprocess.run(["scancel", *ids], check=True)
