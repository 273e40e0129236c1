"""Jobs that outlive their server process: detach, adoption, precise ends of calls.

Two executors of this test process stand for two server processes: the
first one shuts down (or its claim is made to look like that of a dead
process), the second one adopts its jobs.
"""
import dataclasses
import json
import os
import signal
from pathlib import Path

import pytest

from fractal_server.db import db
from fractal_server.db.models import JobV2
from fractal_server.process_identity import is_dead
from fractal_server.runner.executor import JobExecutor

from .conftest import RunnerApi, image, wait_for


@pytest.fixture
def executors(app):
    """Start executors on demand (the backend may be replaced); shut them all down at the end."""
    started = []

    def start(**backend_changes) -> JobExecutor:
        state = app.extensions["fractal"]
        backend = dataclasses.replace(state.backend, **backend_changes)
        executor = JobExecutor(app, backend)
        executor.start()
        started.append(executor)
        return executor

    yield start
    for executor in started:
        executor.shutdown(grace_seconds=10)


def job_row(app, job_id: int) -> JobV2:
    with app.app_context():
        row = db.session.get(JobV2, job_id)
        db.session.expunge(row)
        return row


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def append_task(api: RunnerApi) -> None:
    api.task("append", non_parallel="append_line.py")


def test_shutdown_detaches_and_the_next_executor_adopts(api, app, executors, tmp_path):
    """The running call survives the shutdown, runs once, and the job ends as without the interruption."""
    append_task(api)
    gate, record = tmp_path / "gate", tmp_path / "record.txt"
    zarr_dir = str(tmp_path / "zarr")
    dataset_id = api.dataset(zarr_dir=zarr_dir, images=[image(f"{zarr_dir}/a")])
    workflow_id = api.workflow(
        ("append", {"args_non_parallel": {"path": str(record), "line": "first"}}),
        ("append", {"args_non_parallel": {"path": str(record), "line": "second", "wait_for_file": str(gate)}}),
        ("generic_parallel", {"args_parallel": {"attributes": {"seen": True}}}),
    )
    first = executors()
    job = api.submit(workflow_id, dataset_id)
    working_dir = Path(job["working_dir"])
    wait_for(lambda: (working_dir / "1_append" / "1.log").exists())

    first.shutdown(grace_seconds=10)
    row = job_row(app, job["id"])
    assert (row.status, row.executor_id) == ("submitted", None)
    assert row.runner_state["phase"] == [1, 0]
    wrapper = row.runner_state["handle"]["wrapper"]
    assert not is_dead(wrapper), "the task call must keep running while no server process holds the job"
    assert "the job's calls keep running" in (working_dir / "workflow.log").read_text()

    gate.touch()
    executors()
    job = api.wait(job["id"])
    assert job["status"] == "done", job["log"]
    assert lines(record) == ["first", "second"]
    assert "Job adopted by server process" in job["log"]
    assert api.images(dataset_id) == [image(f"{zarr_dir}/a", attributes={"seen": True})]
    assert [item["status"] for item in api.history(dataset_id)] == ["done"] * 3
    assert job_row(app, job["id"]).runner_state is None
    assert "job_start_state.json" not in api.files(job)


def test_adoption_during_the_compute_phase_does_not_run_the_init_again(api, app, executors, tmp_path):
    gate = tmp_path / "gate"
    datasets = {}
    for name in ("interrupted", "reference"):
        zarr_dir = str(tmp_path / name)
        datasets[name] = api.dataset(zarr_dir=zarr_dir, images=[image(f"{zarr_dir}/{img}") for img in "ab"])
    workflow_id = api.workflow(
        ("generic_compound", {"args_parallel": {"wait_for_file": str(gate), "attributes": {"computed": 1}}}),
    )
    first = executors()
    job = api.submit(workflow_id, datasets["interrupted"])
    folder = Path(job["working_dir"]) / "0_generic_compound"
    wait_for(lambda: (folder / "0_par_0000001.log").exists())
    init_log = (folder / "0.log").read_text()
    first.shutdown(grace_seconds=10)
    assert job_row(app, job["id"]).runner_state["phase"] == [0, 1]

    executors()
    gate.touch()
    job = api.wait(job["id"])
    assert job["status"] == "done", job["log"]
    wait_for(lambda: folder.parent.with_name(folder.parent.name + ".zip").exists())  # written just after the end
    files = api.files(job)
    assert files["0_generic_compound/0.log"].decode() == init_log, "the init task ran once"

    assert api.run(workflow_id, datasets["reference"])["status"] == "done"
    interrupted, reference = (
            json.loads(json.dumps(api.images(datasets[name])).replace(f"/{name}/", "/"))
        for name in ("interrupted", "reference")
    )
    assert interrupted == reference
    assert len(reference) == 4


def test_jobs_of_a_dead_process_are_adopted(api, app, executors):
    """A claim by a process that no longer sends heartbeats is released; the job then runs."""
    dataset_id = api.dataset()
    workflow_id = api.workflow("generic_non_parallel")
    job = api.submit(workflow_id, dataset_id)
    with app.app_context():
        row = db.session.get(JobV2, job["id"])
        row.executor_id = "vm-that-does-not-exist:1:1"
        row.executor_heartbeat = None
        db.session.commit()
    executors()
    assert api.wait(job["id"])["status"] == "done"


def test_a_phase_interrupted_while_submitting_is_not_submitted_again(api, app, executors, tmp_path):
    append_task(api)
    record = tmp_path / "record.txt"
    dataset_id = api.dataset()
    workflow_id = api.workflow(("append", {"args_non_parallel": {"path": str(record), "line": "once"}}))
    job = api.submit(workflow_id, dataset_id)
    with app.app_context():
        row = db.session.get(JobV2, job["id"])
        row.runner_state = {"phase": [0, 0], "handle": None}
        db.session.commit()
    executors()
    job = api.wait(job["id"])
    assert job["status"] == "failed"
    assert "stopped while it was submitting the calls of the task at position 0" in job["log"]
    assert job["log"].startswith(f"JOB ERROR in Fractal job {job['id']}:")
    assert lines(record) == []


def test_a_backend_that_cannot_adopt_cancels_the_calls(api, app, executors, tmp_path):
    gate = tmp_path / "gate"
    dataset_id = api.dataset()
    workflow_id = api.workflow(("generic_non_parallel", {"args_non_parallel": {"wait_for_file": str(gate)}}))
    first = executors()
    job = api.submit(workflow_id, dataset_id)
    wait_for(lambda: (Path(job["working_dir"]) / "0_generic_non_parallel" / "0.log").exists())
    first.shutdown(grace_seconds=10)
    wrapper = job_row(app, job["id"]).runner_state["handle"]["wrapper"]

    executors(can_adopt=False)
    job = api.wait(job["id"])
    assert job["status"] == "failed"
    assert "cannot follow calls that another process started: they were cancelled" in job["log"]
    wait_for(lambda: is_dead(wrapper))


def test_a_call_that_vanishes_is_reported_lost(run_api, tmp_path):
    api = run_api
    gate = tmp_path / "gate"
    dataset_id = api.dataset()
    workflow_id = api.workflow(("generic_non_parallel", {"args_non_parallel": {"wait_for_file": str(gate)}}))
    job = api.submit(workflow_id, dataset_id)
    phase_file = Path(job["working_dir"]) / "0_generic_non_parallel" / "0.phase.json"
    wait_for(lambda: (phase_file.parent / "0.log").exists())
    # Something outside Fractal kills the wrapper and its task (e.g. the kernel's OOM killer)
    pids = [int(pid) for pid in os.listdir("/proc") if pid.isdigit()]
    wrapper = next(pid for pid in pids if str(phase_file) in _cmdline(pid))
    task = next(pid for pid in pids if f"{phase_file.parent}/0.args.json" in _cmdline(pid))
    for pid in (wrapper, task):
        os.kill(pid, signal.SIGKILL)
    job = api.wait(job["id"])
    assert job["status"] == "failed"
    assert "Task call 0 did not complete: it vanished without recording how it ended." in job["log"]
    assert "ADDITIONAL INFO:" in job["log"]


def test_every_call_records_its_end(run_api):
    api = run_api
    dataset_id = api.dataset()
    workflow_id = api.workflow("generic_non_parallel", ("generic_non_parallel", {"args_non_parallel": {"fail": True}}))
    job = api.run(workflow_id, dataset_id, status="failed")
    files = api.files(job)
    assert json.loads(files["0_generic_non_parallel/0.status.json"]) == {"returncode": 0}
    assert json.loads(files["1_generic_non_parallel/1.status.json"]) == {"returncode": 1}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
