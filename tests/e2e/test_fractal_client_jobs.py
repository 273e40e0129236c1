"""End to end: a job built, run and inspected with the real `fractal` client.

`fractalctl start` serves a throw-away PostgreSQL database set up by
`fractalctl set-db`; the command-line client of fractal-client 2.5 creates
the project, dataset, tasks and workflow as the default admin, submits the
job, polls it and downloads its folder, exactly as a user would.
"""
import json
import time

from runner.conftest import mock_command


def write_json(path, content) -> str:
    path.write_text(json.dumps(content))
    return str(path)


def test_submit_poll_and_download_a_job_with_the_fractal_client(fractal, tmp_path):
    project_id = fractal.ok("--batch", "project", "new", "client project")
    zarr_dir = tmp_path / "zarr"
    dataset_id = fractal.ok("--batch", "project", "add-dataset", project_id, "plate", "--zarr-dir", str(zarr_dir))
    create_images = fractal.ok(
        "--batch", "task", "new", "Create Images", "--command-non-parallel", mock_command("create_images.py")
    )
    compound = fractal.ok(
        "--batch",
        "task",
        "new",
        "Make MIP",
        "--command-non-parallel",
        mock_command("generic_compound_init.py"),
        "--command-parallel",
        mock_command("generic_compound_compute.py"),
    )
    workflow_id = fractal.ok("--batch", "workflow", "new", "client workflow", project_id)
    fractal.ok(
        "workflow",
        "add-task",
        project_id,
        workflow_id,
        "--task-id",
        create_images,
        "--args-non-parallel",
        write_json(tmp_path / "create.json", {"num_images": 2}),
    )
    fractal.ok(
        "workflow",
        "add-task",
        project_id,
        workflow_id,
        "--task-id",
        compound,
        "--args-parallel",
        write_json(tmp_path / "mip.json", {"suffix": "_mip"}),
    )
    workflow = json.loads(fractal.ok("workflow", "show", project_id, workflow_id))
    assert [wftask["task"]["type"] for wftask in workflow["task_list"]] == ["non_parallel", "compound"]

    job_id = fractal.ok("--batch", "job", "submit", project_id, workflow_id, dataset_id)
    deadline = time.monotonic() + 60
    while (status := fractal.ok("--batch", "job", "show", project_id, job_id)) == "submitted":
        assert time.monotonic() < deadline, f"job {job_id} still submitted after 60s"
        time.sleep(0.5)
    job = json.loads(fractal.ok("job", "show", project_id, job_id))
    assert status == job["status"] == "done", job["log"]
    assert job["dataset_id"] == int(dataset_id)
    assert 'END workflow "client workflow"' in job["log"]

    output = tmp_path / "logs"
    message = fractal.ok("job", "download-logs", "--output", str(output), project_id, job_id)
    assert "Logs downloaded to" in message
    assert not (tmp_path / "logs_tmp.zip").exists()
    files = {str(path.relative_to(output)) for path in output.rglob("*") if path.is_file()}
    assert {
        "workflow.log",
        "0_create_images/0.args.json",
        "0_create_images/0.log",
        "0_create_images/0.metadiff.json",
        "1_make_mip/1.args.json",
        "1_make_mip/1_par_0000000.args.json",
        "1_make_mip/1_par_0000001.args.json",
        "history.json",
        "images.json",
    } <= files, sorted(files)
    assert (output / "workflow.log").read_text() == job["log"]

    create_args = json.loads((output / "0_create_images/0.args.json").read_text())
    assert create_args == {"zarr_urls": [], "zarr_dir": str(zarr_dir), "num_images": 2}
    compute_args = json.loads((output / "1_make_mip/1_par_0000001.args.json").read_text())
    assert compute_args == {
        "zarr_url": f"{zarr_dir}/plate.zarr/B/01/0",
        "init_args": {"position": 1},
        "suffix": "_mip",
    }
    images = json.loads((output / "images.json").read_text())
    assert sorted(image["zarr_url"] for image in images) == sorted(
        f"{zarr_dir}/plate.zarr/B/{index:02d}/0{suffix}" for index in range(2) for suffix in ("", "_mip")
    )
    assert '"num_images": 2' in (output / "0_create_images/0.log").read_text()
