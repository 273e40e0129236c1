"""The worked example of runner-v2.md section 10, and its variations, end to end."""
import json
import re
from pathlib import Path

from fractal_server import __version__

from .conftest import mock_command, wait_for


def _example_workflow(api):
    api.task("measure", parallel="generic_parallel.py")
    return api.workflow(
        ("create_images", {"args_non_parallel": {"num_images": 2}}),
        "mip_compound",
        (
            "measure",
            {
                "input_filters": {"attributes": {}, "types": {"is_3D": False}},
                "args_parallel": {"attributes": {"measured": True}, "filters": {"types": {"measured": True}}},
            },
        ),
        name="example",
    )


def test_three_task_example(run_api):
    api = run_api
    workflow_id = _example_workflow(api)
    dataset_id = api.dataset()
    zarr_dir = api.zarr_dir(dataset_id)
    wftask_ids = api.wftask_ids(workflow_id)

    submitted = api.submit(workflow_id, dataset_id)
    assert submitted["status"] == "submitted"
    assert submitted["log"] is None
    assert (submitted["first_task_index"], submitted["last_task_index"]) == (0, 2)
    job = api.wait(submitted["id"])
    assert job["status"] == "done", job["log"]
    assert job["end_timestamp"] is not None

    # Dataset state (section 10, "Final dataset state"), with this mock's attributes
    b00, b01 = f"{zarr_dir}/plate.zarr/B/00/0", f"{zarr_dir}/plate.zarr/B/01/0"
    assert api.images(dataset_id) == [
        {
            "zarr_url": b00,
            "origin": None,
            "attributes": {"plate": "plate.zarr", "well": "B00"},
            "types": {"is_3D": True},
        },
        {
            "zarr_url": b01,
            "origin": None,
            "attributes": {"plate": "plate.zarr", "well": "B01"},
            "types": {"is_3D": True},
        },
        {
            "zarr_url": f"{b00}_mip",
            "origin": b00,
            "attributes": {"plate": "plate.zarr", "well": "B00", "position": 0, "measured": True},
            "types": {"is_3D": False},
        },
        {
            "zarr_url": f"{b01}_mip",
            "origin": b01,
            "attributes": {"plate": "plate.zarr", "well": "B01", "position": 1, "measured": True},
            "types": {"is_3D": False},
        },
    ]
    assert api.filters(dataset_id) == {
        "attributes": {"plate": "plate.zarr"},
        "types": {"is_3D": False, "measured": True},
    }

    # History: three `done` items with the wftask dumps
    history = api.history(dataset_id)
    assert [item["status"] for item in history] == ["done"] * 3
    assert [item["workflowtask"]["id"] for item in history] == wftask_ids
    assert all(item["parallelization"] == {} for item in history)
    first = history[0]["workflowtask"]
    assert set(first) == {"id", "workflow_id", "order", "input_filters", "task_id", "task"}
    assert first["workflow_id"] == workflow_id
    assert first["order"] == 0
    assert first["input_filters"] == {"attributes": {}, "types": {}}
    assert first["task_id"] == api.task("create_images")
    assert first["task"] == {
        "id": api.task("create_images"),
        "name": "create_images",
        "type": "non_parallel",
        "command_non_parallel": mock_command("create_images.py"),
        "command_parallel": None,
        "source": None,
        "version": None,
        "input_types": {},
        "output_types": {"is_3D": True},
    }
    assert history[1]["workflowtask"]["task"]["type"] == "compound"
    assert history[2]["workflowtask"]["input_filters"] == {"attributes": {}, "types": {"is_3D": False}}

    # Status endpoint
    response = api.status(dataset_id, workflow_id)
    assert response.status_code == 200
    assert response.json == {"status": {str(i): "done" for i in wftask_ids}}

    # Job folder: layout, arguments, outputs, snapshots
    files = api.files(job)
    working_dir = Path(job["working_dir"])
    assert working_dir.name == f"proj_v2_{api.project_id:07d}_wf_{workflow_id:07d}_job_{job['id']:07d}_" + (
        job["start_timestamp"][:19].replace("-", "").replace(":", "").replace("T", "_")
    )
    settings = api.client.application.extensions["fractal"].settings
    assert working_dir.parent == Path(settings.FRACTAL_RUNNER_WORKING_BASE_DIR)
    assert job["working_dir_user"] == job["working_dir"]
    assert sorted(files) == sorted(
        [
            "workflow.log",
            "history.json",
            "filters.json",
            "images.json",
            "0_create_images/0.args.json",
            "0_create_images/0.metadiff.json",
            "0_create_images/0.log",
            "0_create_images/0.status.json",
            "1_mip_compound/1.args.json",
            "1_mip_compound/1.metadiff.json",
            "1_mip_compound/1.log",
            "1_mip_compound/1.status.json",
        ]
        + [
            f"{folder}/{order}_par_{index:07d}.{suffix}"
            for folder, order in (("1_mip_compound", 1), ("2_measure", 2))
            for index in (0, 1)
            for suffix in ("args.json", "metadiff.json", "log", "status.json")
        ]
        # The call wrapper's phase files: one per phase, named after its first call
        + [
            f"{folder}/{prefix}.{suffix}"
            for folder, prefix in (
                ("0_create_images", "0"),
                ("1_mip_compound", "1"),
                ("1_mip_compound", "1_par_0000000"),
                ("2_measure", "2_par_0000000"),
            )
            for suffix in ("phase.json", "phase.out")
        ]
    )
    args = files["0_create_images/0.args.json"].decode()
    assert json.loads(args) == {"zarr_urls": [], "zarr_dir": zarr_dir, "num_images": 2}
    assert args == json.dumps({"zarr_urls": [], "zarr_dir": zarr_dir, "num_images": 2}, indent=2)
    assert json.loads(files["1_mip_compound/1.args.json"]) == {"zarr_urls": [b00, b01], "zarr_dir": zarr_dir}
    assert json.loads(files["1_mip_compound/1.metadiff.json"]) == {
        "parallelization_list": [
            {"zarr_url": b00, "init_args": {"position": 0}},
            {"zarr_url": b01, "init_args": {"position": 1}},
        ]
    }
    assert json.loads(files["1_mip_compound/1_par_0000000.args.json"]) == {
        "zarr_url": b00,
        "init_args": {"position": 0},
    }
    assert json.loads(files["1_mip_compound/1_par_0000001.args.json"]) == {
        "zarr_url": b01,
        "init_args": {"position": 1},
    }
    assert json.loads(files["2_measure/2_par_0000001.args.json"]) == {
        "zarr_url": f"{b01}_mip",
        "attributes": {"measured": True},
        "filters": {"types": {"measured": True}},
    }
    assert "arguments:" in files["2_measure/2_par_0000000.log"].decode()

    assert json.loads(files["history.json"]) == history
    assert json.loads(files["filters.json"]) == api.filters(dataset_id)
    assert json.loads(files["images.json"]) == api.images(dataset_id)
    for name in ("history.json", "filters.json", "images.json"):
        content = files[name].decode()
        assert content == json.dumps(json.loads(content), indent=2)

    # workflow.log: the job log of a successful job
    log = files["workflow.log"].decode()
    assert job["log"] == log
    messages = [line.split(" - ", 3)[3] for line in log.splitlines() if line.count(" - ") >= 3]
    logger_names = {line.split(" - ")[1] for line in log.splitlines() if line.count(" - ") >= 3}
    assert logger_names == {f"WF{workflow_id}_job{job['id']}"}
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - WF\d+_job\d+ - INFO - ", log)
    assert messages[0].startswith('Start execution of workflow "example"; more logs at ')
    expected_sequence = [
        'START workflow "example"',
        'SUBMIT 0-th task (name="create_images")',
        'END    0-th task (name="create_images")',
        'SUBMIT 1-th task (name="mip_compound")',
        'END    1-th task (name="mip_compound")',
        'SUBMIT 2-th task (name="measure")',
        'END    2-th task (name="measure")',
    ]
    header = "\n".join(messages[: messages.index('START workflow "example"')])
    for fact in (__version__, "local", job["working_dir"], f"{job['id']}"):
        assert fact in header
    positions = [messages.index(message) for message in expected_sequence]
    assert positions == sorted(positions)
    assert any(message.startswith("End execution of workflow") for message in messages[positions[-1] :])
    assert messages[-1] == 'END workflow "example"'

    # Finished: the folder was zipped next to itself (kept, as the zip is small)
    wait_for(lambda: Path(job["working_dir"] + ".zip").exists())
    assert not Path(job["working_dir"] + "_tmp.zip").exists()
    assert working_dir.is_dir()

    # Variation 1: without resetting the filters, re-running task 1 selects no
    # image (no image has the *type* `measured`); the init still runs.
    job = api.run(workflow_id, dataset_id, {"first_task_index": 1, "last_task_index": 1}, status="done")
    files = api.files(job)
    assert json.loads(files["1_mip_compound/1.args.json"]) == {"zarr_urls": [], "zarr_dir": zarr_dir}
    assert not any("_par_" in name for name in files)
    assert not any(name.startswith(("0_", "2_")) for name in files)
    assert len(api.images(dataset_id)) == 4
    assert api.filters(dataset_id)["types"] == {"is_3D": False, "measured": True}
    assert [item["status"] for item in api.history(dataset_id)] == ["done"] * 4

    # Variation 2: with the filters reset, all four images are selected and the
    # 2-D ones break mip's input types.
    api.set_filters(dataset_id, {"attributes": {}, "types": {}})
    job = api.run(workflow_id, dataset_id, {"first_task_index": 1}, status="failed")
    assert job["log"] == (
        f"JOB ERROR in Fractal job {job['id']}:\nTRACEBACK:\nJobExecutionError\n\n"
        "Invalid filtered image list\n"
        "Task input types: task.input_types={'is_3D': True}\n"
        f"Image zarr_url: {b00}_mip\n"
        "Image types: {'is_3D': False}\n"
    )
    history = api.history(dataset_id)
    assert [item["status"] for item in history] == ["done"] * 4 + ["failed"]
    assert history[-1]["workflowtask"]["id"] == wftask_ids[1]
    assert set(history[-1]["workflowtask"]) == {"id", "workflow_id", "order", "input_filters", "task_id", "task"}
    assert len(api.images(dataset_id)) == 4
    assert api.filters(dataset_id) == {"attributes": {}, "types": {}}
    response = api.status(dataset_id, workflow_id)
    assert response.json == {"status": {str(wftask_ids[0]): "done", str(wftask_ids[1]): "failed"}}
