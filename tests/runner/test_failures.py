"""Failures: the three report formats and the partial results (runner-v2.md section 7)."""
import stat
from pathlib import Path

from api.factories import create_job

from fractal_server.db import db
from fractal_server.db.models import JobV2

from .conftest import image, wait_for

HISTORY_KEYS = {"id", "workflow_id", "order", "input_filters", "task_id", "task"}


def test_task_error_keeps_partial_results(run_api):
    api = run_api
    api.task("par", parallel="generic_parallel.py")
    zarr_dir = str(api.tmp_path / "zarr")
    urls = [f"{zarr_dir}/img{index}" for index in range(3)]
    dataset_id = api.dataset(zarr_dir=zarr_dir, images=[image(url) for url in urls])

    # A first job gives the dataset some history
    old_filter = {"output": {"filters": {"attributes": {"old": 1}}}}
    previous = api.workflow(("generic_non_parallel", {"args_non_parallel": old_filter}))
    api.run(previous, dataset_id, status="done")
    old_history = api.history(dataset_id)

    workflow_id = api.workflow(
        (
            "generic_parallel",
            {
                "args_parallel": {
                    "attributes": {"first": True, "step": 1},
                    "filters": {"attributes": {"old": None, "step": 1}},
                },
                "input_filters": {"attributes": {"old": None}},
            },
        ),
        ("par", {"args_parallel": {"attributes": {"second": True}, "fail_on": [urls[1]]}}),
        "generic_non_parallel",
    )
    wftask_ids = api.wftask_ids(workflow_id)
    job = api.run(workflow_id, dataset_id, status="failed")
    files = api.files(job)
    failing_log = files["1_par/1_par_0000001.log"].decode()
    assert "Failing on request" in failing_log
    assert failing_log.startswith("arguments: ")
    assert job["log"] == f"TASK ERROR: Task name: par, position in Workflow: 1\nTRACEBACK:\n{failing_log}"
    assert job["end_timestamp"] is not None
    # The following task was not run
    assert not any(name.startswith("2_") for name in files)
    assert "SUBMIT 2-th" not in files["workflow.log"].decode()

    # Dataset: as after task 0; history = old + done + failed
    assert [img["attributes"] for img in api.images(dataset_id)] == [{"first": True, "step": 1}] * 3
    assert api.filters(dataset_id) == {"attributes": {"old": None, "step": 1}, "types": {}}
    history = api.history(dataset_id)
    assert history[: len(old_history)] == old_history
    new = history[len(old_history):]
    assert [(item["workflowtask"]["id"], item["status"]) for item in new] == [
        (wftask_ids[0], "done"),
        (wftask_ids[1], "failed"),
    ]
    assert set(new[1]["workflowtask"]) == HISTORY_KEYS
    assert new[1]["workflowtask"]["task"]["name"] == "par"
    assert new[1]["parallelization"] == {}

    # Status endpoint: done, failed (and nothing after)
    assert api.status(dataset_id, workflow_id).json == {
        "status": {str(wftask_ids[0]): "done", str(wftask_ids[1]): "failed"}
    }


def test_failure_in_first_task_changes_nothing(run_api):
    api = run_api
    zarr_dir = str(api.tmp_path / "zarr")
    dataset_id = api.dataset(zarr_dir=zarr_dir, filters={"attributes": {"x": 1}, "types": {}},
                             images=[image(f"{zarr_dir}/a", attributes={"x": 1})])
    workflow_id = api.workflow(("generic_non_parallel", {"args_non_parallel": {"fail": True}}), "generic_parallel")
    job = api.run(workflow_id, dataset_id, status="failed")
    files = api.files(job)
    log_file = files["0_generic_non_parallel/0.log"].decode()
    assert "Failing on request (zarr_url='')" in log_file
    assert job["log"] == f"TASK ERROR: Task name: generic_non_parallel, position in Workflow: 0\nTRACEBACK:\n{log_file}"
    assert not any(name in files for name in ("history.json", "filters.json", "images.json"))
    assert api.images(dataset_id) == [image(f"{zarr_dir}/a", attributes={"x": 1})]
    assert api.filters(dataset_id) == {"attributes": {"x": 1}, "types": {}}
    history = api.history(dataset_id)
    assert [(item["workflowtask"]["order"], item["status"]) for item in history] == [(0, "failed")]


def test_killed_task_is_a_job_error(run_api):
    api = run_api
    dataset_id = api.dataset()
    workflow_id = api.workflow(
        ("create_images", {"args_non_parallel": {"num_images": 2}}),
        ("generic_parallel", {"args_parallel": {"kill_self": True}}),
    )
    job = api.run(workflow_id, dataset_id, status="failed")
    assert job["log"] == (
        f"JOB ERROR in Fractal job {job['id']}:\nTRACEBACK:\nJobExecutionError\n\n"
        "ADDITIONAL INFO:\nTask failed with returncode=-9\n\n"
    )
    # Partial results: the images created by task 0
    assert len(api.images(dataset_id)) == 2
    assert api.filters(dataset_id) == {"attributes": {"plate": "plate.zarr"}, "types": {"is_3D": True}}
    assert [(item["workflowtask"]["order"], item["status"]) for item in api.history(dataset_id)] == [
        (0, "done"),
        (1, "failed"),
    ]


def test_failed_wftask_is_inferred_within_the_job_range(run_api):
    """For errors that do not name the task, the failed one is the next of the range."""
    api = run_api
    dataset_id = api.dataset()
    workflow_id = api.workflow(
        "generic_non_parallel",
        "generic_non_parallel",
        ("generic_non_parallel", {"args_non_parallel": {"output": {"unknown": 1}}}),
        "generic_non_parallel",
    )
    wftask_ids = api.wftask_ids(workflow_id)
    job = api.run(workflow_id, dataset_id, {"first_task_index": 1}, status="failed")
    assert "Validation of task output failed." in job["log"]
    assert [(item["workflowtask"]["id"], item["status"]) for item in api.history(dataset_id)] == [
        (wftask_ids[1], "done"),
        (wftask_ids[2], "failed"),
    ]
    # An unexpected error in the first task of the range
    workflow_id = api.workflow(
        "generic_non_parallel", ("generic_non_parallel", {"args_non_parallel": {"raw_output": "[1, 2"}})
    )
    wftask_ids = api.wftask_ids(workflow_id)
    job = api.run(workflow_id, dataset_id, {"first_task_index": 1}, status="failed")
    assert job["log"].startswith(f"UNKNOWN ERROR in Fractal job {job['id']}\nTRACEBACK:\n")
    assert api.history(dataset_id)[-1]["workflowtask"]["id"] == wftask_ids[1]
    assert api.history(dataset_id)[-1]["status"] == "failed"


def test_invalid_commands(run_api, tmp_path):
    api = run_api
    not_executable = tmp_path / "script.sh"
    not_executable.write_text("#!/bin/sh\necho hi\n")
    not_executable.chmod(stat.S_IRUSR | stat.S_IWUSR)
    response = api.post("/api/v2/task/", json={"name": "not_exec", "command_non_parallel": str(not_executable)})
    assert response.status_code == 201
    missing = api.post("/api/v2/task/", json={"name": "missing", "command_parallel": "/nonexistent/fractal-task"})
    assert missing.status_code == 201
    dataset_id = api.dataset(images=[image(str(tmp_path / "zarr1" / "a"))])

    workflow_id = api.post(f"{api.project_url}/workflow/", json={"name": "w1"}).json["id"]
    api.post(f"{api.project_url}/workflow/{workflow_id}/wftask/?task_id={response.json['id']}", json={})
    job = api.run(workflow_id, dataset_id, status="failed")
    assert job["log"].startswith("TASK ERROR: Task name: not_exec, position in Workflow: 0\nTRACEBACK:\n")
    assert f'Command "{not_executable}" is not valid. Hint: make sure that it is executable.' in job["log"]

    workflow_id = api.post(f"{api.project_url}/workflow/", json={"name": "w2"}).json["id"]
    api.post(f"{api.project_url}/workflow/{workflow_id}/wftask/?task_id={missing.json['id']}", json={})
    job = api.run(workflow_id, dataset_id, status="failed")
    assert job["log"].startswith("TASK ERROR: Task name: missing, position in Workflow: 0\nTRACEBACK:\n")
    assert 'Command "/nonexistent/fractal-task" is not valid.' in job["log"]

    # Forbidden characters (PATCH does not check them; the runner does)
    task_id = api.task("generic_non_parallel")
    response = api.patch(f"/api/v2/task/{task_id}/", json={"command_non_parallel": "echo hi; rm -rf /tmp/x"})
    assert response.status_code == 200, response.json
    job = api.run(api.workflow("generic_non_parallel"), dataset_id, status="failed")
    assert job["log"].startswith(
        "TASK ERROR: Task name: generic_non_parallel, position in Workflow: 0\nTRACEBACK:\n"
        "Invalid command. Original error: "
    )
    assert not any(name.endswith(".args.json") for name in api.files(job))
    assert [item["status"] for item in api.history(dataset_id)] == ["failed", "failed", "failed"]


def test_missing_rows_and_existing_folder(api, app, request):
    """Jobs whose dataset or workflow vanished, or whose folder exists, fail at start."""
    dataset_id = api.dataset()
    workflow_id = api.workflow("generic_non_parallel")
    # Submitted without an executor: the job waits
    waiting = api.submit(workflow_id, dataset_id)
    Path(waiting["working_dir"]).mkdir(parents=True)
    orphan = create_job(app, api.project_id, workflow_id, dataset_id=None)
    both = create_job(app, api.project_id, None, dataset_id=None)
    with app.app_context():
        for job_id in (orphan, both):
            db.session.get(JobV2, job_id).working_dir = str(api.tmp_path / f"job{job_id}")
        db.session.commit()

    request.getfixturevalue("executor")
    job = api.wait(waiting["id"])
    assert job["status"] == "failed"
    assert job["log"] == f"Workflow dir {waiting['working_dir']} already exists."
    assert job["end_timestamp"] is not None
    assert api.wait(orphan)["log"] == "Cannot fetch dataset None from database\n"
    assert api.wait(both)["log"] == (
        "Cannot fetch dataset None from database\nCannot fetch workflow None from database\n"
    )
    assert api.history(dataset_id) == []


def test_job_folder_cannot_be_created(run_api, environ):
    api = run_api
    dataset_id = api.dataset()
    workflow_id = api.workflow("generic_non_parallel")
    # The base folder is a file (the next test's set-up removes it)
    Path(environ["FRACTAL_RUNNER_WORKING_BASE_DIR"]).write_text("not a folder")
    job = api.run(workflow_id, dataset_id, status="failed")
    assert job["log"].startswith(
        "NotADirectoryError error occurred while creating job folder and subfolders.\nOriginal error: "
    )
    assert job["end_timestamp"] is not None
    assert api.history(dataset_id) == []


def test_dataset_is_written_back_wholesale(run_api):
    """Edits made through the API while a job runs are overwritten by the job's results,
    unless the job failed before completing any task (runner-v2.md section 2, note, and 7)."""
    api = run_api
    zarr_dir = str(api.tmp_path / "zarr")
    first = f"{zarr_dir}/first"
    dataset_id = api.dataset(zarr_dir=zarr_dir, images=[image(first)])
    images_url = f"{api.project_url}/dataset/{dataset_id}/images/"

    gate = api.tmp_path / "gate"  # the first task of each job waits for this file

    def edit_while_running(job, marker):
        wait_for(lambda: (Path(job["working_dir"]) / "0_generic_non_parallel" / "0.args.json").exists())
        response = api.post(images_url, json=image(f"{zarr_dir}/{marker}"))
        assert response.status_code == 201, response.json
        response = api.patch(images_url, json={"zarr_url": first, "attributes": {"edited": marker}})
        assert response.status_code == 200, response.json
        api.set_filters(dataset_id, {"attributes": {"edited": marker}, "types": {}})
        assert api.job(job["id"])["status"] == "submitted"
        gate.touch()
        job = api.wait(job["id"])
        gate.unlink()
        return job

    sleepy = {"wait_for_file": str(gate), "output": {"filters": {"attributes": {"job": 1}}}}
    workflow_id = api.workflow(("generic_non_parallel", {"args_non_parallel": sleepy}))
    job = api.submit(workflow_id, dataset_id)
    assert edit_while_running(job, "during_done")["status"] == "done"
    assert api.images(dataset_id) == [image(first)]
    assert api.filters(dataset_id) == {"attributes": {"job": 1}, "types": {}}

    # Failed after a completed task: the snapshot of that task wins
    workflow_id = api.workflow(
        ("generic_non_parallel", {"args_non_parallel": sleepy}),
        ("generic_non_parallel", {"args_non_parallel": {"fail": True}}),
    )
    job = api.submit(workflow_id, dataset_id)
    assert edit_while_running(job, "during_failed")["status"] == "failed"
    assert api.images(dataset_id) == [image(first)]
    assert api.filters(dataset_id) == {"attributes": {"job": 1}, "types": {}}

    # Failed in its first task: images and filters are left as they are
    failing = {"wait_for_file": str(gate), "fail": True}
    workflow_id = api.workflow(("generic_non_parallel", {"args_non_parallel": failing}))
    job = api.submit(workflow_id, dataset_id)
    assert edit_while_running(job, "kept")["status"] == "failed"
    assert api.images(dataset_id) == [image(first, attributes={"edited": "kept"}), image(f"{zarr_dir}/kept")]
    assert api.filters(dataset_id) == {"attributes": {"edited": "kept"}, "types": {}}
    assert [item["status"] for item in api.history(dataset_id)] == ["done", "done", "failed", "failed"]
