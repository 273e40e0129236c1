"""`/api/v2` job endpoints (api-v2.md section 11) and deletions of objects used by jobs."""
import io
import zipfile
from datetime import datetime
from pathlib import Path

from api.factories import set_task_group_active

from .conftest import RunnerApi, wait_for


def _detail(response):
    return response.json["detail"]


def test_submit_preconditions_in_order(api, make_user, app):
    dataset_id = api.dataset()
    empty_workflow = api.workflow()
    workflow_id = api.workflow("generic_non_parallel", "generic_parallel")
    url = api.project_url + "/job/submit/"

    def submit(query, body=None, headers=None):
        return api.client.post(f"{url}?{query}", json={} if body is None else body, headers=headers or api.headers)

    # Unverified users are forbidden, whatever the request
    _, unverified = make_user("unverified@example.org")
    response = submit("workflow_id=x", {"bad": 1}, headers=unverified)
    assert (response.status_code, response.json) == (403, {"detail": "Forbidden"})

    # Request validation
    response = submit(f"workflow_id={workflow_id}")
    assert response.status_code == 422
    assert response.json["detail"][0]["loc"] == ["query", "dataset_id"]
    response = submit(f"workflow_id={workflow_id}&dataset_id={dataset_id}", {"first_task_index": -1})
    assert response.status_code == 422
    assert "first_task_index cannot be negative (given: -1)" in response.json["detail"][0]["msg"]
    response = submit(
        f"workflow_id={workflow_id}&dataset_id={dataset_id}", {"first_task_index": 1, "last_task_index": 0}
    )
    assert response.status_code == 422
    assert response.json["detail"][0]["loc"] == ["body", "last_task_index"]
    assert "first_task_index=1 cannot be larger than last_task_index=0" in response.json["detail"][0]["msg"]
    for body in ({"unknown": 1}, {"worker_init": None}, {"slurm_account": 3}):
        assert submit(f"workflow_id={workflow_id}&dataset_id={dataset_id}", body).status_code == 422, body

    # 1. Dataset then workflow access
    other_project = api.post("/api/v2/project/", json={"name": "other"}).json["id"]
    other_dataset = api.post(
        f"/api/v2/project/{other_project}/dataset/", json={"name": "d", "zarr_dir": "/z"}
    ).json["id"]
    other_workflow = api.post(f"/api/v2/project/{other_project}/workflow/", json={"name": "w"}).json["id"]
    response = api.post("/api/v2/project/9999/job/submit/?workflow_id=1&dataset_id=1", json={})
    assert (response.status_code, _detail(response)) == (404, "Project not found")
    assert _detail(submit("workflow_id=9999&dataset_id=9999")) == "Dataset not found"
    response = submit(f"workflow_id=9999&dataset_id={other_dataset}")
    assert (response.status_code, _detail(response)) == (
        422,
        f"Invalid project_id={api.project_id} for dataset_id={other_dataset}",
    )
    assert _detail(submit(f"workflow_id=9999&dataset_id={dataset_id}")) == "Workflow not found"
    response = submit(f"workflow_id={other_workflow}&dataset_id={dataset_id}")
    assert (response.status_code, _detail(response)) == (
        422,
        f"Invalid project_id={api.project_id} for workflow_id={other_workflow}.",
    )
    _, stranger = make_user("stranger@example.org", is_verified=True)
    response = submit(f"workflow_id={workflow_id}&dataset_id={dataset_id}", headers=stranger)
    assert (response.status_code, _detail(response)) == (403, f"Not allowed on project {api.project_id}")

    # 2. Empty workflow (even with bad indices)
    response = submit(f"workflow_id={empty_workflow}&dataset_id={dataset_id}", {"last_task_index": 5})
    assert (response.status_code, _detail(response)) == (422, f"Workflow {empty_workflow} has empty task list")

    # 3. Indices
    prefix = "Invalid values for first_task_index or last_task_index (with num_tasks=2).\nOriginal error: "
    response = submit(f"workflow_id={workflow_id}&dataset_id={dataset_id}", {"last_task_index": 2})
    assert (response.status_code, _detail(response)) == (
        422,
        prefix + "last_task_index=2 cannot be larger than (num_tasks-1)=1",
    )
    response = submit(f"workflow_id={workflow_id}&dataset_id={dataset_id}", {"first_task_index": 2})
    assert (response.status_code, _detail(response)) == (
        422,
        prefix + "first_task_index=2 cannot be larger than last_task_index=1",
    )

    # 4. Inactive tasks, only within the range
    task_id = api.task("generic_parallel")
    task_group_id = api.get(f"/api/v2/task/{task_id}/").json["taskgroupv2_id"]
    set_task_group_active(app, task_group_id, False)
    response = submit(f"workflow_id={workflow_id}&dataset_id={dataset_id}")
    assert (response.status_code, _detail(response)) == (
        422,
        f"Error: task {task_id} (generic_parallel) is not active.",
    )
    job = api.submit(workflow_id, dataset_id, {"last_task_index": 0})
    assert job["status"] == "submitted"

    # 6. Dataset in use (after the inactive-task check)
    response = submit(f"workflow_id={workflow_id}&dataset_id={dataset_id}")
    assert _detail(response) == f"Error: task {task_id} (generic_parallel) is not active."
    set_task_group_active(app, task_group_id, True)
    response = submit(f"workflow_id={workflow_id}&dataset_id={dataset_id}", {"slurm_account": "nope"})
    assert (response.status_code, _detail(response)) == (
        422,
        f"Dataset {dataset_id} is already in use in submitted job(s).",
    )
    # ... also through another workflow
    response = submit(f"workflow_id={api.workflow('generic_non_parallel')}&dataset_id={dataset_id}")
    assert _detail(response) == f"Dataset {dataset_id} is already in use in submitted job(s)."

    # 7. SLURM accounts, with every backend
    second_dataset = api.dataset()
    response = submit(f"workflow_id={workflow_id}&dataset_id={second_dataset}", {"slurm_account": "nope"})
    assert (response.status_code, _detail(response)) == (
        422,
        "SLURM account 'nope' is not among those available to the current user",
    )
    response = api.patch("/auth/current-user/settings/", json={"slurm_accounts": ["acc1", "acc2"]})
    assert response.status_code == 200, response.json
    assert api.submit(workflow_id, second_dataset)["slurm_account"] == "acc1"
    third_dataset = api.dataset()
    assert api.submit(workflow_id, third_dataset, {"slurm_account": "acc2"})["slurm_account"] == "acc2"


def test_submitted_job_row(api, app):
    task_id = api.task("generic_non_parallel")
    dataset_id = api.dataset(filters={"attributes": {"a": 1}, "types": {"t": True}})
    workflow_id = api.workflow("generic_non_parallel", "generic_non_parallel", name="My workflow")
    before = api.get(f"/api/v2/task/{task_id}/").json["taskgroupv2_id"]
    job = api.submit(workflow_id, dataset_id, {"first_task_index": 1, "worker_init": " module load x "})
    assert job["status"] == "submitted"
    assert job["log"] is None
    assert job["end_timestamp"] is None
    assert job["user_email"] == "runner@example.org"
    assert (job["project_id"], job["workflow_id"], job["dataset_id"]) == (api.project_id, workflow_id, dataset_id)
    assert (job["first_task_index"], job["last_task_index"]) == (1, 1)
    assert job["worker_init"] == "module load x"
    assert job["slurm_account"] is None
    project = api.get(api.project_url + "/").json
    assert job["project_dump"] == {
        "id": api.project_id,
        "name": "project",
        "timestamp_created": project["timestamp_created"],
    }
    dataset = api.dataset_read(dataset_id)
    assert job["dataset_dump"] == {
        "id": dataset_id,
        "name": dataset["name"],
        "project_id": api.project_id,
        "timestamp_created": dataset["timestamp_created"],
        "zarr_dir": dataset["zarr_dir"],
        "filters": {"attributes": {"a": 1}, "types": {"t": True}},
    }
    assert set(job["workflow_dump"]) == {"id", "name", "project_id", "timestamp_created"}
    assert job["workflow_dump"]["name"] == "My workflow"
    start = datetime.fromisoformat(job["start_timestamp"])
    assert start.utcoffset().total_seconds() == 0
    assert Path(job["working_dir"]).name == (
        f"proj_v2_{api.project_id:07d}_wf_{workflow_id:07d}_job_{job['id']:07d}_{start:%Y%m%d_%H%M%S}"
    )
    assert job["working_dir_user"] == job["working_dir"]
    task_group = api.get(f"/api/v2/task-group/{before}/").json
    assert task_group["timestamp_last_used"] == job["start_timestamp"]


def test_list_show_and_download(run_api, make_user, superuser):
    api = run_api
    _, admin = superuser
    dataset_id = api.dataset()
    gate = api.tmp_path / "gate"  # task 1 waits for this file
    workflow_id = api.workflow(
        ("create_images", {"args_non_parallel": {"num_images": 1}}),
        ("generic_parallel", {"args_parallel": {"wait_for_file": str(gate)}}),
        name="Slow Workflow",
    )
    job = api.submit(workflow_id, dataset_id)
    job_url = f"{api.project_url}/job/{job['id']}/"
    working_dir = Path(job["working_dir"])

    # While running
    wait_for(lambda: (working_dir / "1_generic_parallel" / "1_par_0000000.args.json").exists())
    running = api.job(job["id"])
    assert running["status"] == "submitted" and running["log"] is None
    tmp = api.job(job["id"], show_tmp_logs="true")
    assert tmp["log"] == (working_dir / "workflow.log").read_text()
    assert 'SUBMIT 1-th task (name="generic_parallel")' in tmp["log"]
    admin_url = f"/admin/v2/job/{job['id']}/"
    assert api.client.get(admin_url, headers=admin).json["log"] is None
    assert api.client.get(f"{admin_url}?show_tmp_logs=true", headers=admin).json["log"] == tmp["log"]
    response = api.client.get(f"{admin_url}download/", headers=admin)
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert "0_create_images/0.log" in archive.namelist()
    response = api.get(job_url + "download/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-zip-compressed"
    assert response.headers["content-disposition"] == f"attachment;filename={working_dir.name}_archive.zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        names = archive.namelist()
        assert archive.getinfo("workflow.log").compress_type == zipfile.ZIP_DEFLATED
    assert "workflow.log" in names
    assert "0_create_images/0.args.json" in names
    assert "1_generic_parallel/1_par_0000000.args.json" in names
    assert not any(name.startswith("/") for name in names)

    # Finished
    gate.touch()
    done = api.wait(job["id"])
    assert done["status"] == "done"
    assert api.job(job["id"], show_tmp_logs="true")["log"] == done["log"]
    response = api.get(job_url + "download/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-zip-compressed"
    assert response.headers["content-disposition"] == f"attachment;filename={working_dir.name}_archive.zip"
    wait_for(lambda: Path(f"{working_dir}.zip").exists())
    response = api.get(job_url + "download/")
    assert response.data == Path(f"{working_dir}.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.read("workflow.log").decode() == done["log"]
        assert "1_generic_parallel/1_par_0000000.log" in archive.namelist()

    # Lists
    second = api.run(api.workflow("generic_non_parallel"), dataset_id, status="done")
    for url in ("/api/v2/job/", f"{api.project_url}/job/"):
        jobs = api.get(url).json
        assert [item["id"] for item in jobs] == [job["id"], second["id"]]
        assert jobs[0]["log"] == done["log"]
        jobs = api.get(url + "?log=false").json
        assert [item["log"] for item in jobs] == [None, None]
        assert jobs[0]["status"] == "done"
    jobs = api.get(f"{api.project_url}/workflow/{workflow_id}/job/").json
    assert [item["id"] for item in jobs] == [job["id"]]
    assert jobs[0]["log"] == done["log"]

    # Other users see nothing; access rules of J
    _, stranger = make_user("stranger@example.org", is_verified=True)
    assert api.client.get("/api/v2/job/", headers=stranger).json == []
    for suffix in ("", "download/"):
        response = api.client.get(job_url + suffix, headers=stranger)
        assert (response.status_code, _detail(response)) == (403, f"Not allowed on project {api.project_id}")
        response = api.get(f"{api.project_url}/job/9999/{suffix}")
        assert (response.status_code, _detail(response)) == (404, "Job not found")
    other_project = api.post("/api/v2/project/", json={"name": "other"}).json["id"]
    response = api.get(f"/api/v2/project/{other_project}/job/{job['id']}/download/")
    assert (response.status_code, _detail(response)) == (
        422,
        f"Invalid project_id={other_project} for job_id={job['id']}",
    )
    assert api.get(f"/api/v2/project/{other_project}/job/").json == []


def test_deletions_while_submitted_and_after(run_api, superuser):
    api = run_api
    _, admin = superuser
    dataset_id = api.dataset()
    gate = api.tmp_path / "gate"
    workflow_id = api.workflow(("generic_non_parallel", {"args_non_parallel": {"wait_for_file": str(gate)}}))
    job = api.submit(workflow_id, dataset_id)
    ids = job["id"]
    for url, what, object_id in (
        (api.project_url + "/", "project", api.project_id),
        (f"{api.project_url}/dataset/{dataset_id}/", "dataset", dataset_id),
        (f"{api.project_url}/workflow/{workflow_id}/", "workflow", workflow_id),
    ):
        response = api.delete(url)
        assert (response.status_code, _detail(response)) == (
            422,
            f"Cannot delete {what} {object_id} because it is linked to active job(s) {ids}.",
        )
    gate.touch()
    done = api.wait(job["id"])
    assert done["status"] == "done"

    assert api.delete(f"{api.project_url}/workflow/{workflow_id}/").status_code == 204
    job = api.job(done["id"])
    assert job["workflow_id"] is None and job["dataset_id"] == dataset_id
    assert api.delete(f"{api.project_url}/dataset/{dataset_id}/").status_code == 204
    job = api.job(done["id"])
    assert (job["workflow_id"], job["dataset_id"]) == (None, None)
    assert job["workflow_dump"]["id"] == workflow_id and job["dataset_dump"]["id"] == dataset_id
    assert api.get(f"{api.project_url}/job/{done['id']}/download/").status_code == 200
    assert [item["id"] for item in api.get(f"{api.project_url}/job/").json] == [done["id"]]

    assert api.delete(api.project_url + "/").status_code == 204
    assert api.get("/api/v2/job/").json == []
    response = api.client.get(f"/admin/v2/job/{done['id']}/", headers=admin)
    assert response.status_code == 200
    job = response.json
    assert (job["project_id"], job["workflow_id"], job["dataset_id"]) == (None, None, None)
    assert job["project_dump"]["id"] == api.project_id
    assert job["log"] == done["log"] and job["status"] == "done"
    assert api.client.get(f"/admin/v2/job/{done['id']}/download/", headers=admin).status_code == 200
    jobs = api.client.get("/admin/v2/job/?log=false", headers=admin).json
    assert [(item["id"], item["project_id"], item["log"]) for item in jobs] == [(done["id"], None, None)]


def test_deleting_a_whole_project_after_a_failed_job(run_api):
    """Deleting a project clears the job's three foreign keys at once; a new project works."""
    api = run_api
    dataset_id = api.dataset()
    workflow_id = api.workflow(("generic_non_parallel", {"args_non_parallel": {"fail": True}}))
    failed = api.run(workflow_id, dataset_id, status="failed")
    assert api.delete(api.project_url + "/").status_code == 204
    assert api.get("/api/v2/job/").json == []

    api2 = RunnerApi(api.client, api.headers, api.tmp_path / "second")
    api2._tasks = api._tasks
    job = api2.run(api2.workflow("generic_non_parallel"), api2.dataset(), status="done")
    assert job["id"] == failed["id"] + 1
    assert [item["id"] for item in api.get("/api/v2/job/").json] == [job["id"]]


def test_large_job_folder_is_replaced_by_its_archive(run_api):
    """The folder is deleted once its zip holds every file and weighs at least 1 MB."""
    api = run_api
    dataset_id = api.dataset()
    workflow_id = api.workflow(("generic_non_parallel", {"args_non_parallel": {"noise_bytes": 1_300_000}}))
    job = api.run(workflow_id, dataset_id, status="done")
    working_dir = Path(job["working_dir"])
    archive = Path(f"{working_dir}.zip")
    # (the archive is written just after the job's end is recorded)
    wait_for(lambda: not working_dir.exists())
    assert archive.stat().st_size >= 1024 * 1024
    assert not Path(f"{working_dir}_tmp.zip").exists()
    response = api.get(f"{api.project_url}/job/{job['id']}/download/")
    assert response.status_code == 200
    assert response.data == archive.read_bytes()
    with zipfile.ZipFile(io.BytesIO(response.data)) as zipped:
        assert sorted(zipped.namelist()) == [
            "0_generic_non_parallel/0.args.json",
            "0_generic_non_parallel/0.log",
            "0_generic_non_parallel/0.phase.json",
            "0_generic_non_parallel/0.phase.out",
            "0_generic_non_parallel/0.status.json",
            "filters.json",
            "history.json",
            "images.json",
            "workflow.log",
        ]
        assert zipped.read("workflow.log").decode() == job["log"]
    assert api.status(dataset_id, workflow_id).json == {"status": {str(api.wftask_ids(workflow_id)[0]): "done"}}
