"""The process-wide job states of the slurm backend, against the real `squeue`."""

import pytest

from fractal_server_slurm_backend.squeue import GONE, SlurmJobStates

from .cluster import TASK_USERS, as_task_user, wait_for_final_state

pytestmark = pytest.mark.usefixtures("slurm_cluster")
NEVER_KNOWN = "999999990"


def finished_job(shared_dirs) -> str:
    workdir = shared_dirs.users[TASK_USERS[0]]
    result = as_task_user(
        TASK_USERS[0],
        ["sbatch", "--parsable", f"--chdir={workdir}", "--output=/dev/null", "--mem=16M", "--wrap=true"],
    )
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert wait_for_final_state(job_id) == "COMPLETED"
    return job_id


def test_finished_and_unknown_jobs_have_ended(shared_dirs):
    job_id = finished_job(shared_dirs)
    states = SlurmJobStates(interval=0)
    assert states.states([job_id, NEVER_KNOWN]) == {job_id: "COMPLETED", NEVER_KNOWN: GONE}
    # Only unknown ids: squeue fails with "Invalid job id specified".
    states.forget([job_id])
    assert states.states([NEVER_KNOWN]) == {NEVER_KNOWN: GONE}
    assert states.last_error == ""


def test_one_squeue_per_interval_for_all_watched_jobs(shared_dirs):
    job_id = finished_job(shared_dirs)
    states = SlurmJobStates(interval=3600)
    assert states.states([job_id]) == {job_id: "COMPLETED"}
    # Within the interval, a job watched since gets no squeue of its own.
    assert states.states([NEVER_KNOWN, job_id]) == {NEVER_KNOWN: None, job_id: "COMPLETED"}
    states.interval = 0
    assert states.states([NEVER_KNOWN]) == {NEVER_KNOWN: GONE}
