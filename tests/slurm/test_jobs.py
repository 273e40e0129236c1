"""Jobs of the slurm backend on the local cluster, through the HTTP API of a real server.

The server runs as the service account; each user's tasks run as that
user's `slurm_user`, through sudo. SLURM's job-completion log is the test
oracle of which SLURM jobs ran and how they ended.
"""

import json
from pathlib import Path

import pytest
from servers import postgres, wait_until

from .cluster import as_task_user, run, slurm_jobs
from .deployment import check_adoption_after_kill, job_row, make_users, server_file, wait_running

pytestmark = pytest.mark.usefixtures("slurm_cluster")


@pytest.fixture(scope="module")
def users(slurm_deployment):
    return make_users(slurm_deployment)


@pytest.fixture(scope="module")
def user1(users):
    return users[0]


@pytest.fixture(scope="module")
def user2(users):
    return users[1]


@pytest.fixture(scope="module", autouse=True)
def time_limit_job(user1):
    """A task over its one-minute time limit, submitted before the other tests:
    SLURM takes about 90 s to end it, while they run."""
    task_id = user1.task("sleeper", non_parallel="generic_non_parallel.py")
    workflow_id = user1.workflow((task_id, {"args_non_parallel": {"sleep": 300}, "meta_non_parallel": {"time": "1"}}))
    return user1.submit(workflow_id, user1.dataset("time-limit"))


@pytest.fixture(autouse=True)
def running_server(slurm_deployment):
    """A test that failed between a kill and a restart leaves no dead server to the next ones."""
    slurm_deployment.ensure_running()


# --- the tests ------------------------------------------------------------


def test_non_parallel_then_parallel_calls_in_batches(user1):
    create = user1.task("create", non_parallel="create_images.py")
    update = user1.task("update", parallel="generic_parallel.py")
    workflow_id = user1.workflow(
        (create, {"args_non_parallel": {"num_images": 5}}),
        (update, {"args_parallel": {"attributes": {"seen": True}}}),
    )
    dataset_id = user1.dataset("batches")
    job = user1.wait(user1.submit(workflow_id, dataset_id)["id"])
    assert job["status"] == "done", job["log"]
    assert [image["attributes"]["seen"] for image in user1.images(dataset_id)] == [True] * 5

    # 5 calls of 1 CPU: at most 4 jobs of 1 CPU (batching_config), so 3 jobs
    # of 2, 2 and 1 calls, one at a time; and the job of the first task before.
    records = slurm_jobs(job)
    assert [record["JobState"] for record in records] == ["COMPLETED"] * 4
    assert records[0]["Name"].startswith("create-") and records[1]["Name"].startswith("update-")
    [subfolder] = server_file(job).glob("1_update_*")
    scripts = sorted(subfolder.glob("*_slurm_submit.sbatch"))
    assert [path.name for path in scripts] == [f"1_batch_00000{index}_slurm_submit.sbatch" for index in range(3)]
    assert ["#SBATCH --ntasks=1\n" in path.read_text() for path in scripts] == [True] * 3
    phases = [json.loads((subfolder / f"1_batch_00000{index}.phase.json").read_text()) for index in range(3)]
    assert [[Path(call["log"]).name for call in phase["calls"]] for phase in phases] == [
        ["1_par_0000000.log", "1_par_0000001.log"],
        ["1_par_0000002.log", "1_par_0000003.log"],
        ["1_par_0000004.log"],
    ]
    assert [phase["lane_launcher"] for phase in phases] == [None] * 3

    # The calls ran as the user, in the user's folder; their files were copied back.
    user_side = Path(job["working_dir_user"], subfolder.name)
    assert user_side.stat().st_mode & 0o777 == 0o700
    assert (user_side / "1_par_0000004.log").owner() == "fractal-user1"
    assert server_file(job, subfolder.name, "1_par_0000004.log").read_text().startswith("arguments: ")
    assert json.loads(server_file(job, subfolder.name, "1_par_0000004.status.json").read_text()) == {"returncode": 0}
    out_files = sorted(path.name for path in subfolder.glob("*_slurm_*.out"))
    assert out_files == sorted(
        f"1_batch_00000{index}_slurm_{record['JobId']}.out" for index, record in enumerate(records[1:])
    )


def test_compound_task(user1):
    create = user1.task("create", non_parallel="create_images.py")
    compound = user1.task("compound", non_parallel="generic_compound_init.py", parallel="generic_compound_compute.py")
    workflow_id = user1.workflow((create, {"args_non_parallel": {"num_images": 2}}), (compound, {}))
    job = user1.wait(user1.submit(workflow_id, user1.dataset("compound"))["id"])
    assert job["status"] == "done", job["log"]
    # create, init, and one job per image for the compute part (one CPU per job)
    assert [record["JobState"] for record in slurm_jobs(job)] == ["COMPLETED"] * 4


def test_a_failing_task_is_a_task_error_with_its_log(user1):
    task_id = user1.task("failing", non_parallel="generic_non_parallel.py")
    workflow_id = user1.workflow((task_id, {"args_non_parallel": {"fail": True}}))
    job = user1.wait(user1.submit(workflow_id, user1.dataset("failing"))["id"])
    assert job["status"] == "failed"
    assert job["log"].startswith("TASK ERROR: Task name: failing-"), job["log"]
    assert ", position in Workflow: 0\nTRACEBACK:\narguments: " in job["log"]
    assert "Failing on request" in job["log"]


def test_a_task_needing_a_gpu_gets_the_gpu_options_in_its_script(user1):
    """No GPU here: the script is checked, and sbatch's refusal is the job's error."""
    task_id = user1.task("gpu", non_parallel="generic_non_parallel.py")
    workflow_id = user1.workflow((task_id, {"meta_non_parallel": {"needs_gpu": True, "cpus_per_task": 2}}))
    job = user1.wait(user1.submit(workflow_id, user1.dataset("gpu"))["id"])
    assert job["status"] == "failed"
    assert "Submit command 'sbatch --parsable " in job["log"] and "sbatch: error: " in job["log"], job["log"]
    [script] = server_file(job).glob("0_*/0_slurm_submit.sbatch")
    lines = script.read_text().splitlines()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gres=gpu:1", "#SBATCH --gpus=1", "#SBATCH --mem=200M"):
        assert line in lines, lines
    assert "#SBATCH --cpus-per-task=2" in lines and "#SBATCH --partition=main" not in lines


@pytest.mark.skipif(
    "proctrack/cgroup" not in run(["scontrol", "show", "config"]).stdout,
    reason="only the cluster's cgroup mode limits the memory of each job step",
)
def test_a_task_over_its_memory_is_reported_out_of_memory(user1):
    task_id = user1.task("hungry", non_parallel="generic_non_parallel.py")
    workflow_id = user1.workflow((task_id, {"args_non_parallel": {"allocate_mb": 300}, "meta_non_parallel": {"mem": 50}}))
    job = user1.wait(user1.submit(workflow_id, user1.dataset("hungry"))["id"])
    assert job["status"] == "failed"
    assert job["log"].startswith(f"JOB ERROR in Fractal job {job['id']}:\nTRACEBACK:\nJobExecutionError\n\nCOMMAND:\n#!/bin/bash\n")
    assert "#SBATCH --mem=50M" in job["log"]
    assert (
        "ADDITIONAL INFO:\nTask call 0 did not complete: it was killed for exceeding its memory limit.\n"
        "The kernel's out-of-memory killer ended it (the OOM kill count of its memory cgroup grew while it ran)."
    ) in job["log"]


def test_stop_cancels_the_slurm_jobs(user1):
    task_id = user1.task("sleepy", parallel="generic_parallel.py")
    create = user1.task("create", non_parallel="create_images.py")
    workflow_id = user1.workflow(
        (create, {"args_non_parallel": {"num_images": 3}}), (task_id, {"args_parallel": {"sleep": 300}})
    )
    job = user1.submit(workflow_id, user1.dataset("stopped"))
    ids = wait_running(user1, job, "sleepy")
    user1.stop(job["id"])
    stopped = user1.wait(job["id"])
    assert stopped["status"] == "failed"
    assert stopped["log"] == (
        f"JOB ERROR in Fractal job {job['id']}:\nTRACEBACK:\nJobExecutionError\n\n"
        "ADDITIONAL INFO:\nJob cancelled due to executor shutdown.\n\n"
    )
    # Three jobs of one call: one ran, two waited for a CPU; all cancelled.
    states = wait_until(lambda: len(ended := slurm_jobs(job)) == 4 and ended, 30, "the jobs to end")
    assert [record["JobState"] for record in states] == ["COMPLETED"] + ["CANCELLED"] * 3
    assert set(ids) < {record["JobId"] for record in states}


def test_a_slurm_job_cancelled_outside_fractal(user1):
    task_id = user1.task("cancelled", non_parallel="generic_non_parallel.py")
    job = user1.submit(user1.workflow((task_id, {"args_non_parallel": {"sleep": 300}})), user1.dataset("scancel"))
    [slurm_id] = wait_running(user1, job, "cancelled")
    assert as_task_user("fractal-user1", ["scancel", slurm_id]).returncode == 0
    cancelled = user1.wait(job["id"])
    assert cancelled["status"] == "failed"
    log = cancelled["log"]
    assert "ADDITIONAL INFO:\nTask call 0 did not complete: it was cancelled.\n" in log, log
    assert f"SLURM job {slurm_id} ended with state CANCELLED." in log
    assert "\nSTDERR:\n" in log and f"JOB {slurm_id} ON" in log and "CANCELLED AT" in log


def test_a_job_of_a_killed_server_is_adopted_and_no_call_runs_twice(slurm_deployment, user1):
    check_adoption_after_kill(slurm_deployment, user1)


def test_a_vanished_slurm_job_is_lost_after_the_error_interval(slurm_deployment, user1):
    """SLURM forgot the job (a handle of ids it never knew, as after a purge): no endless wait."""
    task_id = user1.task("vanishing", non_parallel="generic_non_parallel.py")
    job = user1.submit(user1.workflow((task_id, {"args_non_parallel": {"sleep": 300}})), user1.dataset("vanished"))
    [slurm_id] = wait_running(user1, job, "vanishing")
    slurm_deployment.kill()
    assert as_task_user("fractal-user1", ["scancel", slurm_id]).returncode == 0
    wait_until(lambda: slurm_jobs(job), 30, "the SLURM job to end")
    [subfolder] = server_file(job).glob("0_*")
    status_file = Path(job["working_dir_user"], subfolder.name, "0.status.json")
    assert as_task_user("fractal-user1", ["rm", "-f", str(status_file)]).returncode == 0
    _, state = job_row(slurm_deployment.servers.database, job["id"])
    state["handle"]["jobs"][0]["id"] = "999999999"
    with postgres(slurm_deployment.servers.database) as connection:
        connection.execute("UPDATE jobv2 SET runner_state = %s WHERE id = %s", (json.dumps(state), job["id"]))

    slurm_deployment.start()
    lost = user1.wait(job["id"], timeout=60)
    assert lost["status"] == "failed"
    assert "Task call 0 did not complete: it vanished without recording how it ended." in lost["log"]
    assert "SLURM job 999999999 is no longer listed by squeue. No file tells how this task call ended." in lost["log"], lost["log"]
    assert "STDOUT:\nFile " in lost["log"] and "0_slurm_999999999.out is missing" in lost["log"]


def test_users_cannot_read_each_other_job_folders(user1, user2):
    jobs = {}
    for user in (user1, user2):
        task_id = user.task("private", non_parallel="generic_non_parallel.py")
        job = user.wait(user.submit(user.workflow((task_id, {})), user.dataset("private"))["id"])
        assert job["status"] == "done", job["log"]
        assert Path(job["working_dir_user"]).is_relative_to(user.project_dir)
        slurm_user = user.project_dir.owner()
        assert Path(job["working_dir_user"]).owner() == slurm_user
        jobs[slurm_user] = job
    for reader, owner in (("fractal-user2", "fractal-user1"), ("fractal-user1", "fractal-user2")):
        folder = Path(jobs[owner]["working_dir_user"])
        for argv in (["ls", str(folder)], ["cat", str(next(folder.glob("0_*/0.log")))]):
            result = as_task_user(reader, argv)
            assert result.returncode != 0 and "Permission denied" in result.stderr, result
    # The server-side copies are the service account's alone, for the job's own user too.
    for reader in ("fractal-user1", "fractal-user2"):
        for job in jobs.values():
            for argv in (["ls", job["working_dir"]], ["cat", f"{job['working_dir']}.zip"]):
                result = as_task_user(reader, argv)
                assert result.returncode != 0 and "Permission denied" in result.stderr, result


def test_a_task_over_its_time_limit_is_reported_timed_out(user1, time_limit_job):
    job = user1.wait(time_limit_job["id"], timeout=240)
    assert job["status"] == "failed"
    assert "#SBATCH --time=1\n" in job["log"]
    assert "ADDITIONAL INFO:\nTask call 0 did not complete: it was killed for exceeding its time limit." in job["log"]
    assert "ended with state TIMEOUT." in job["log"]
    assert "DUE TO TIME LIMIT" in job["log"]
