"""`GET /api/v2/project/{p}/status/` (api-v2.md section 11)."""
from pathlib import Path

from api.factories import create_job

from fractal_server.db import db
from fractal_server.db.models import JobV2

from .conftest import wait_for


def test_status_while_running_and_after(run_api):
    api = run_api
    dataset_id = api.dataset()
    gate = api.tmp_path / "gate"  # task 1 waits for this file
    workflow_id = api.workflow(
        "generic_non_parallel",
        ("generic_non_parallel", {"args_non_parallel": {"wait_for_file": str(gate)}}),
        "generic_non_parallel",
        "generic_non_parallel",
    )
    t0, t1, t2, t3 = (str(i) for i in api.wftask_ids(workflow_id))
    assert api.status(dataset_id, workflow_id).json == {"status": {}}

    job = api.submit(workflow_id, dataset_id, {"last_task_index": 2})
    assert api.status(dataset_id, workflow_id).json["status"][t2] == "submitted"
    # Once task 0 is in history.json, it shows as done
    history_file = Path(job["working_dir"]) / "history.json"
    wait_for(lambda: history_file.exists())
    response = api.status(dataset_id, workflow_id)
    assert response.status_code == 200
    assert response.json == {"status": {t0: "done", t1: "submitted", t2: "submitted"}}
    gate.touch()
    api.wait(job["id"])
    gate.unlink()
    assert api.status(dataset_id, workflow_id).json == {"status": {t0: "done", t1: "done", t2: "done"}}

    # A later run of a single task: the walk stops at the last task of the range;
    # tasks after it are hidden, even if done before
    job = api.submit(workflow_id, dataset_id, {"first_task_index": 1, "last_task_index": 1})
    assert api.status(dataset_id, workflow_id).json == {"status": {t0: "done", t1: "submitted"}}
    gate.touch()
    api.wait(job["id"])
    # Without a running job, the walk stops at the last history item
    assert api.status(dataset_id, workflow_id).json == {"status": {t0: "done", t1: "done"}}

    # A failed item stops the walk
    api.patch(
        f"{api.project_url}/workflow/{workflow_id}/wftask/{t0}/",
        json={"args_non_parallel": {"fail": True}},
    )
    job = api.run(workflow_id, dataset_id, {"last_task_index": 0}, status="failed")
    job = api.run(workflow_id, dataset_id, {"first_task_index": 3}, status="done")
    assert api.status(dataset_id, workflow_id).json == {"status": {t0: "failed"}}


def test_status_access_and_multiple_running_jobs(api, app):
    dataset_id = api.dataset()
    workflow_id = api.workflow("generic_non_parallel", "generic_non_parallel")
    t0, t1 = (str(i) for i in api.wftask_ids(workflow_id))
    url = f"{api.project_url}/status/"
    assert api.get(f"{url}?dataset_id=9999&workflow_id=9999").json == {"detail": "Dataset not found"}
    assert api.get(f"{url}?dataset_id={dataset_id}&workflow_id=9999").json == {"detail": "Workflow not found"}
    assert api.get(f"{url}?dataset_id={dataset_id}").status_code == 422

    # A job whose range goes beyond the (shrunk) workflow: no task is the last valid one
    job_id = create_job(app, api.project_id, workflow_id, dataset_id=dataset_id)
    with app.app_context():
        row = db.session.get(JobV2, job_id)
        row.first_task_index, row.last_task_index = 0, 5
        row.working_dir = str(api.tmp_path / "missing")
        db.session.commit()
    assert api.status(dataset_id, workflow_id).json == {"status": {t0: "submitted", t1: "submitted"}}

    other_id = create_job(app, api.project_id, workflow_id, dataset_id=dataset_id)
    response = api.status(dataset_id, workflow_id)
    assert response.status_code == 422
    assert response.json == {
        "detail": f"Cannot get WorkflowTaskV2 statuses as DatasetV2 {dataset_id} is linked to multiple "
        f"active jobs: [{job_id}, {other_id}]."
    }
    # Jobs of another workflow do not count
    other_workflow = api.workflow("generic_non_parallel")
    assert api.status(dataset_id, other_workflow).json == {"status": {}}
