"""Jobs of the slurm_ssh backend, through the HTTP API of a real server, on the local cluster over SSH.

The server runs as the service account and reaches SLURM as the remote user
through the test sshd. The job folders (`ssh_jobs_dir`) and the datasets are
in the remote user's private home, which the server's account cannot read:
every file goes through SSH. SLURM's job-completion log is the oracle of
which SLURM jobs ran.
"""
import json
import time
import uuid
from pathlib import Path

import pytest
from servers import DEFAULT_ADMIN, Client, wait_until
from slurm.cluster import as_service_account, cancel_jobs_under, slurm_jobs
from slurm.deployment import SLURM_CONFIG, User, check_adoption_after_kill, running_deployment, server_file, wait_running

from .remote import ADDRESS, PORT, REMOTE_HOME, REMOTE_USER, as_root, server_environ, sshd, ssh_settings

OUTAGE_LIMIT = 10
"""FRACTAL_SLURM_OUTAGE_LIMIT of the server: a longer outage fails the job."""
SHORT_OUTAGE = 4
"""Seconds without sshd that a job rides out (connections are retried for about 30 s)."""


@pytest.fixture(scope="module")
def remote_root(sshd_running) -> Path:
    """The user's folders on the remote side (jobs, datasets, a log of pre-submission commands)."""
    root = REMOTE_HOME / f"jobs-{uuid.uuid4().hex[:8]}"
    yield root
    cancel_jobs_under(root, (REMOTE_USER,))
    as_root(["rm", "-rf", str(root)])


@pytest.fixture(scope="module")
def ssh_deployment(slurm_cluster, remote_root):
    default = {**SLURM_CONFIG["default_slurm_config"], "pre_submission_commands": [
        f"echo submitting >> {remote_root}/pre_submission.log"
    ]}
    config = {**SLURM_CONFIG, "default_slurm_config": default}
    environ = server_environ(FRACTAL_SLURM_OUTAGE_LIMIT=str(OUTAGE_LIMIT))
    with running_deployment("ssh-jobs", config, **environ) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def user(ssh_deployment, remote_root) -> User:
    admin = User(ssh_deployment, DEFAULT_ADMIN, project_dir=remote_root / "zarr")
    admin.give_settings(admin.id, ssh_settings(str(remote_root)))
    return admin


@pytest.fixture(autouse=True)
def running_server(ssh_deployment):
    """A test that failed between a kill and a restart leaves no dead server to the next ones."""
    ssh_deployment.ensure_running()


def remote_names(folder: str) -> set[str]:
    result = as_root(["ls", "-A", folder])
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_non_parallel_then_parallel_calls_in_batches(user, remote_root):
    create = user.task("create", non_parallel="create_images.py")
    update = user.task("update", parallel="generic_parallel.py")
    workflow_id = user.workflow(
        (create, {"args_non_parallel": {"num_images": 5}}),
        (update, {"args_parallel": {"attributes": {"seen": True}}}),
    )
    dataset_id = user.dataset("batches")
    job = user.wait(user.submit(workflow_id, dataset_id)["id"])
    assert job["status"] == "done", job["log"]
    assert [image["attributes"]["seen"] for image in user.images(dataset_id)] == [True] * 5

    # As with `slurm`: the first task's job, then 3 jobs of 2, 2 and 1 calls.
    assert [record["JobState"] for record in slurm_jobs(job)] == ["COMPLETED"] * 4
    assert [record["UserId"].split("(")[0] for record in slurm_jobs(job)] == [REMOTE_USER] * 4
    # pre_submission_commands ran before each sbatch, on the remote side.
    assert as_root(["cat", f"{remote_root}/pre_submission.log"]).stdout == "submitting\n" * 4

    # The remote job folder is under ssh_jobs_dir, the remote user's, out of the server's reach,
    # and the server-side folder mirrors it, file for file.
    assert job["working_dir_user"].startswith(f"{remote_root}/jobs/")
    assert as_service_account(["ls", job["working_dir_user"]]).returncode != 0
    for subfolder in sorted(server_file(job).glob("[01]_*")):
        local = {path.name for path in subfolder.iterdir()}
        assert remote_names(f"{job['working_dir_user']}/{subfolder.name}") == local
    [subfolder] = server_file(job).glob("1_update_*")
    assert server_file(job, subfolder.name, "1_par_0000004.log").read_text().startswith("arguments: ")
    assert json.loads(server_file(job, subfolder.name, "1_par_0000004.status.json").read_text()) == {"returncode": 0}


def test_compound_task(user):
    create = user.task("create", non_parallel="create_images.py")
    compound = user.task("compound", non_parallel="generic_compound_init.py", parallel="generic_compound_compute.py")
    workflow_id = user.workflow((create, {"args_non_parallel": {"num_images": 2}}), (compound, {}))
    job = user.wait(user.submit(workflow_id, user.dataset("compound"))["id"])
    assert job["status"] == "done", job["log"]
    assert [record["JobState"] for record in slurm_jobs(job)] == ["COMPLETED"] * 4


def test_a_failing_task_is_a_task_error_with_its_log(user):
    task_id = user.task("failing", non_parallel="generic_non_parallel.py")
    workflow_id = user.workflow((task_id, {"args_non_parallel": {"fail": True}}))
    job = user.wait(user.submit(workflow_id, user.dataset("failing"))["id"])
    assert job["status"] == "failed"
    assert job["log"].startswith("TASK ERROR: Task name: failing-"), job["log"]
    assert "Failing on request" in job["log"]


def sleeping_job(user, name: str, sleep: float, images: int = 2) -> dict:
    create = user.task("create", non_parallel="create_images.py")
    sleepy = user.task(name, parallel="generic_parallel.py")
    workflow_id = user.workflow(
        (create, {"args_non_parallel": {"num_images": images}}),
        (sleepy, {"args_parallel": {"sleep": sleep, "attributes": {"slept": True}}}),
    )
    dataset_id = user.dataset(name)
    return {**user.submit(workflow_id, dataset_id), "dataset_id": dataset_id}


def test_stop_cancels_the_slurm_jobs(user):
    job = sleeping_job(user, "stopped", 300, images=3)
    ids = wait_running(user, job, "stopped")
    user.stop(job["id"])
    stopped = user.wait(job["id"])
    assert stopped["status"] == "failed"
    assert "ADDITIONAL INFO:\nJob cancelled due to executor shutdown." in stopped["log"]
    states = wait_until(lambda: len(ended := slurm_jobs(job)) == 4 and ended, 30, "the jobs to end")
    assert [record["JobState"] for record in states] == ["COMPLETED"] + ["CANCELLED"] * 3
    assert set(ids) < {record["JobId"] for record in states}


def test_a_job_of_a_killed_server_is_adopted_and_no_call_runs_twice(ssh_deployment, user):
    check_adoption_after_kill(ssh_deployment, user)


def test_a_short_outage_of_sshd_is_ridden_out(user, restart_sshd_at_the_end):
    job = sleeping_job(user, "outage", 2 * SHORT_OUTAGE)
    wait_running(user, job, "outage")
    sshd("stop")
    time.sleep(SHORT_OUTAGE)
    sshd("start")
    done = user.wait(job["id"], timeout=120)
    assert done["status"] == "done", done["log"]
    assert [image["attributes"].get("slept") for image in user.images(job["dataset_id"])] == [True] * 2


def test_a_longer_outage_fails_the_job_naming_the_host_and_the_next_job_works(user, restart_sshd_at_the_end):
    job = sleeping_job(user, "lost", 300)
    ids = wait_running(user, job, "lost")
    sshd("stop")
    started = time.monotonic()
    try:
        # Meanwhile the server answers other requests at once.
        while (status := user.job(job["id"])["status"]) == "submitted":
            assert Client(user.deployment.server.url).get("/api/alive/").status_code == 200
            assert time.monotonic() - started < 240, "the job still waits for the cluster"
            time.sleep(2)
    finally:
        as_root(["scancel", *ids])  # sshd's start checks that a SLURM job runs: free the CPUs
        sshd("start")
    failed = user.job(job["id"])
    assert status == "failed"
    assert f"Cannot follow SLURM job(s) {', '.join(ids)} of {REMOTE_USER}@{ADDRESS}:{PORT}: " in failed["log"]
    assert f"Cannot reach {REMOTE_USER}@{ADDRESS}:{PORT} to run tar" in failed["log"], failed["log"]
    assert f"FRACTAL_SLURM_OUTAGE_LIMIT={OUTAGE_LIMIT} s" in failed["log"]

    task_id = user.task("after", non_parallel="generic_non_parallel.py")
    again = user.wait(user.submit(user.workflow((task_id, {})), user.dataset("after-outage"))["id"])
    assert again["status"] == "done", again["log"]


def test_an_unknown_host_key_is_refused_with_a_clear_message(user, remote_root):
    """The known-hosts file pins 127.0.0.1's key: `localhost` is another name, not trusted."""
    user.give_settings(user.id, ssh_settings(str(remote_root), ssh_host=f"localhost:{PORT}"))
    try:
        task_id = user.task("untrusted", non_parallel="generic_non_parallel.py")
        job = user.wait(user.submit(user.workflow((task_id, {})), user.dataset("untrusted"))["id"])
    finally:
        user.give_settings(user.id, ssh_settings(str(remote_root)))
    assert job["status"] == "failed"
    assert f"The SSH host key of localhost:{PORT}" in job["log"] and "is not in the known-hosts file" in job["log"]
    assert slurm_jobs(job) == []
