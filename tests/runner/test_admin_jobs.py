"""`/admin/v2/job/` endpoints (api-v2.md section 12)."""
import io
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from .conftest import RunnerApi


def test_admin_job_endpoints(run_api, superuser, make_user):
    api = run_api
    admin_id, admin = superuser
    runner_user_id = api.get("/auth/current-user/").json["id"]

    def admin_get(url, **kwargs):
        return api.client.get(url, headers=admin, **kwargs)

    def ids(query=""):
        response = admin_get(f"/admin/v2/job/{query}")
        assert response.status_code == 200, response.json
        return [job["id"] for job in response.json]

    dataset_a, dataset_b = api.dataset(), api.dataset()
    workflow_ok = api.workflow("generic_non_parallel")
    workflow_fail = api.workflow(("generic_non_parallel", {"args_non_parallel": {"fail": True}}))
    job1 = api.run(workflow_ok, dataset_a, status="done")
    job2 = api.run(workflow_fail, dataset_b, status="failed")
    job3 = api.run(workflow_ok, dataset_b, status="done")
    # Another user's project and job
    _, other_headers = make_user("other@example.org", is_verified=True)
    other = RunnerApi(api.client, other_headers, api.tmp_path / "other")
    other._tasks = api._tasks  # shared with the group "All"
    job4 = other.run(other.workflow("generic_non_parallel"), other.dataset(), status="done")

    # Non-superusers are forbidden
    for url in ("/admin/v2/job/", f"/admin/v2/job/{job1['id']}/", f"/admin/v2/job/{job1['id']}/download/"):
        response = api.get(url)
        assert (response.status_code, response.json) == (403, {"detail": "Forbidden"})
    assert api.patch(f"/admin/v2/job/{job1['id']}/", json={"status": "failed"}).status_code == 403

    # Filters
    all_ids = [job1["id"], job2["id"], job3["id"], job4["id"]]
    assert ids() == all_ids
    assert ids(f"?id={job2['id']}") == [job2["id"]]
    assert ids(f"?user_id={runner_user_id}") == all_ids[:3]
    assert ids(f"?user_id={admin_id}") == []
    assert ids(f"?project_id={other.project_id}") == [job4["id"]]
    assert ids(f"?dataset_id={dataset_b}") == [job2["id"], job3["id"]]
    assert ids(f"?workflow_id={workflow_ok}") == [job1["id"], job3["id"]]
    assert ids("?status=failed") == [job2["id"]]
    assert ids(f"?status=done&dataset_id={dataset_b}") == [job3["id"]]
    response = admin_get("/admin/v2/job/?status=running")
    assert response.status_code == 422
    start2 = job2["start_timestamp"]
    assert ids(f"?start_timestamp_min={quote(start2)}") == [job2["id"], job3["id"], job4["id"]]
    assert ids(f"?start_timestamp_max={quote(start2)}") == [job1["id"], job2["id"]]
    end3 = datetime.fromisoformat(job3["end_timestamp"])
    assert ids(f"?end_timestamp_max={quote(job3['end_timestamp'])}") == all_ids[:3]
    assert ids(f"?end_timestamp_min={quote((end3 + timedelta(microseconds=1)).isoformat())}") == [job4["id"]]
    for name in ("start_timestamp_min", "start_timestamp_max", "end_timestamp_min", "end_timestamp_max"):
        naive = "2024-01-01T10:00:00"
        response = admin_get(f"/admin/v2/job/?{name}={naive}")
        assert response.status_code == 422, name
        assert "is naive. You must provide a timezone." in str(response.json), response.json
    jobs = admin_get("/admin/v2/job/").json
    assert jobs[0]["log"] == job1["log"] and jobs[1]["log"] == job2["log"]
    assert [job["log"] for job in admin_get("/admin/v2/job/?log=false").json] == [None] * 4

    # Show
    response = admin_get(f"/admin/v2/job/{job2['id']}/")
    assert response.status_code == 200 and response.json == job2
    assert admin_get(f"/admin/v2/job/{job2['id']}/?show_tmp_logs=true").json == job2
    response = admin_get("/admin/v2/job/9999/")
    assert (response.status_code, response.json) == (404, {"detail": "Job 9999 not found"})

    # Download
    response = admin_get(f"/admin/v2/job/{job4['id']}/download/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-zip-compressed"
    name = Path(job4["working_dir"]).name
    assert response.headers["content-disposition"] == f"attachment;filename={name}_archive.zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.read("workflow.log").decode() == job4["log"]
    response = admin_get("/admin/v2/job/9999/download/")
    assert (response.status_code, response.json) == (404, {"detail": "Job 9999 not found"})


def test_admin_patch_job(api, superuser):
    """An administrator cleans up a job left `submitted`."""
    _, admin = superuser
    dataset_id = api.dataset()
    workflow_id = api.workflow("generic_non_parallel")
    job = api.submit(workflow_id, dataset_id)  # no executor: stays submitted
    url = f"/admin/v2/job/{job['id']}/"

    def patch(body, job_url=url):
        return api.client.patch(job_url, json=body, headers=admin)

    response = patch({"status": "done"})
    assert (response.status_code, response.json) == (422, {"detail": "Cannot set job status to JobStatusTypeV2.DONE"})
    response = patch({"status": "submitted"})
    assert (response.status_code, response.json) == (
        422,
        {"detail": "Cannot set job status to JobStatusTypeV2.SUBMITTED"},
    )
    assert patch({"status": "unknown"}).status_code == 422
    assert patch({"status": "failed", "log": "x"}).status_code == 422
    response = patch({"status": "failed"}, "/admin/v2/job/9999/")
    assert (response.status_code, response.json) == (404, {"detail": "Job 9999 not found"})

    # The dataset is blocked until the job is marked failed
    assert api.submit_response(workflow_id, dataset_id).status_code == 422
    response = patch({"status": "failed"})
    assert response.status_code == 200
    patched = response.json
    assert patched["status"] == "failed"
    assert patched["end_timestamp"] is not None
    assert patched["log"] is None
    assert api.job(job["id"]) == patched
    assert api.submit_response(workflow_id, dataset_id).status_code == 202
