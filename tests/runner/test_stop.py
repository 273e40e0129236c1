"""Stopping jobs (runner-v2.md section 9; api-v2.md sections 11 and 12)."""
import time
from pathlib import Path

from .conftest import RunnerApi, image, wait_for

LOCAL_422 = "Stopping a job execution is not implemented for FRACTAL_RUNNER_BACKEND=local."


def test_local_backend_cannot_stop(run_api, superuser):
    api = run_api
    _, admin = superuser
    dataset_id = api.dataset()
    gate = api.tmp_path / "gate"
    workflow_id = api.workflow(("generic_non_parallel", {"args_non_parallel": {"wait_for_file": str(gate)}}))
    job = api.submit(workflow_id, dataset_id)
    wait_for(lambda: Path(job["working_dir"]).is_dir())
    # Checked first: even for jobs that do not exist
    for url, headers in (
        (f"{api.project_url}/job/{job['id']}/stop/", api.headers),
        (f"{api.project_url}/job/9999/stop/", api.headers),
        ("/api/v2/project/9999/job/9999/stop/", api.headers),
        (f"/admin/v2/job/{job['id']}/stop/", admin),
        ("/admin/v2/job/9999/stop/", admin),
    ):
        response = api.client.get(url, headers=headers)
        assert response.status_code == 422, url
        assert response.json == {"detail": LOCAL_422}
    assert not (Path(job["working_dir"]) / "shutdown").exists()
    assert api.job(job["id"])["status"] == "submitted"
    gate.touch()
    assert api.wait(job["id"])["status"] == "done"


def test_stop_local_experimental(other_app, runner_user, tmp_path, superuser):
    app = other_app(FRACTAL_RUNNER_BACKEND="local_experimental")
    api = RunnerApi(app.test_client(), runner_user, tmp_path)
    zarr_dir = str(tmp_path / "zarr")
    dataset_id = api.dataset(zarr_dir=zarr_dir, images=[image(f"{zarr_dir}/img{index}") for index in range(3)])
    workflow_id = api.workflow(
        (
            "generic_parallel",
            {"args_parallel": {"attributes": {"first": True, "f": 1}, "filters": {"attributes": {"f": 1}}}},
        ),
        ("generic_parallel", {"args_parallel": {"sleep": 60}, "meta_parallel": {"parallel_tasks_per_job": 2}}),
        "generic_non_parallel",
    )
    wftask_ids = api.wftask_ids(workflow_id)

    # Not found, wrong project (after the backend check)
    assert api.get(f"{api.project_url}/job/9999/stop/").status_code == 404
    assert api.client.get("/admin/v2/job/9999/stop/", headers=superuser[1]).json == {"detail": "Job 9999 not found"}

    job = api.submit(workflow_id, dataset_id)
    working_dir = Path(job["working_dir"])
    # Wait for the sleeping calls of task 1
    wait_for(lambda: (working_dir / "1_generic_parallel" / "1_par_0000001.log").exists())
    assert api.status(dataset_id, workflow_id).json == {
        "status": {str(wftask_ids[0]): "done", str(wftask_ids[1]): "submitted", str(wftask_ids[2]): "submitted"}
    }
    started = time.monotonic()
    response = api.get(f"{api.project_url}/job/{job['id']}/stop/")
    assert response.status_code == 202
    assert response.data == b""
    assert (working_dir / "shutdown").exists()
    # The endpoint does not change the status itself
    job = api.wait(job["id"], timeout=30)
    assert time.monotonic() - started < 20
    assert job["status"] == "failed"
    assert job["log"] == (
        f"JOB ERROR in Fractal job {job['id']}:\nTRACEBACK:\nJobExecutionError\n\nADDITIONAL INFO:\n"
        "Job failed with BrokenProcessPool error, likely due to an executor shutdown.\nOriginal error:\n"
        "A process in the process pool was terminated abruptly while the future was running or pending.\n\n"
    )
    # The third call (second chunk) was never started
    files = api.files(job)
    assert "1_generic_parallel/1_par_0000002.log" not in files
    assert "shutdown" in files
    # Partial results
    assert [img["attributes"] for img in api.images(dataset_id)] == [{"first": True, "f": 1}] * 3
    assert api.filters(dataset_id) == {"attributes": {"f": 1}, "types": {}}
    assert [(item["workflowtask"]["id"], item["status"]) for item in api.history(dataset_id)] == [
        (wftask_ids[0], "done"),
        (wftask_ids[1], "failed"),
    ]
    assert api.status(dataset_id, workflow_id).json == {
        "status": {str(wftask_ids[0]): "done", str(wftask_ids[1]): "failed"}
    }

    # The admin endpoint writes the file too (for a finished job, just the file)
    (working_dir / "shutdown").unlink()
    response = api.client.get(f"/admin/v2/job/{job['id']}/stop/", headers=superuser[1])
    assert response.status_code == 202
    assert (working_dir / "shutdown").exists()
    assert api.job(job["id"])["status"] == "failed"
