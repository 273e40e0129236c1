"""Image selection before each task, the input-types check, and the arguments of each call
(runner-v2.md sections 3, 4.2 and 4.3)."""
import json

from .conftest import image


def _selected(files: dict, order: int, task_name: str = "generic_non_parallel") -> list[str]:
    return json.loads(files[f"{order}_{task_name}/{order}.args.json"])["zarr_urls"]


def test_filters_select_images(run_api):
    api = run_api
    zarr_dir = str(api.tmp_path / "zarr")
    a, b, c, d = (f"{zarr_dir}/{name}" for name in "abcd")
    dataset_id = api.dataset(
        zarr_dir=zarr_dir,
        filters={"attributes": {"well": "A"}, "types": {}},
        images=[
            image(a, attributes={"well": "A", "n": 1}, types={"is_3D": True}),
            image(b, attributes={"well": "B", "n": 2, "flag": True}, types={"is_3D": False}),
            image(c, attributes={"well": "A"}),
            image(d, attributes={"n": 1.0}, types={"is_3D": True, "illum": True}),
        ],
    )
    cases = [
        # (wftask input_filters, expected selection)
        ({}, [a, c]),
        ({"attributes": {"well": None}}, [a, b, c, d]),  # null: no constraint, task value wins
        ({"types": {"is_3D": False}}, [c]),  # missing type counts as false
        ({"types": {"is_3D": True}}, [a]),
        ({"attributes": {"well": None, "n": 1}}, [a, d]),  # 1 == 1.0
        ({"attributes": {"n": 1}}, [a]),  # a missing attribute never equals a value
        ({"attributes": {"well": None, "flag": 1}}, [b]),  # True == 1
        ({"types": {"illum": True}}, []),
        ({"attributes": {"well": "B"}, "types": {"illum": False}}, [b]),
    ]
    workflow_id = api.workflow(*[("generic_non_parallel", {"input_filters": filters}) for filters, _ in cases])
    job = api.run(workflow_id, dataset_id, status="done")
    files = api.files(job)
    for order, (filters, expected) in enumerate(cases):
        assert _selected(files, order) == expected, filters
    # Nothing changed: every selected image was "modified" with nothing
    assert api.image_urls(dataset_id) == [a, b, c, d]
    assert api.filters(dataset_id) == {"attributes": {"well": "A"}, "types": {}}


def test_no_filters_select_everything(run_api):
    api = run_api
    zarr_dir = str(api.tmp_path / "zarr")
    urls = [f"{zarr_dir}/{index}" for index in range(3)]
    dataset_id = api.dataset(
        zarr_dir=zarr_dir,
        images=[image(urls[0], types={"x": True}), image(urls[1]), image(urls[2], attributes={"k": "v"})],
    )
    workflow_id = api.workflow("generic_non_parallel")
    job = api.run(workflow_id, dataset_id, status="done")
    assert _selected(api.files(job), 0) == urls


def test_filters_from_earlier_tasks_apply_to_later_ones(run_api):
    """Task output filters and output_types become dataset filters for the next tasks."""
    api = run_api
    api.task("np_2d", non_parallel="generic_non_parallel.py", output_types={"is_3D": False})
    zarr_dir = str(api.tmp_path / "zarr")
    a, b, c = (f"{zarr_dir}/{name}" for name in "abc")
    dataset_id = api.dataset(
        zarr_dir=zarr_dir,
        images=[image(a, attributes={"k": 1}), image(b, attributes={"k": 2}, types={"is_3D": True}), image(c)],
    )
    set_k = {"output": {"filters": {"attributes": {"k": 1}}}}
    workflow_id = api.workflow(
        ("generic_non_parallel", {"args_non_parallel": set_k}),  # -> filter k=1
        ("np_2d", {"input_filters": {"attributes": {"k": None}}}),  # all; then filter is_3D=false
        ("generic_non_parallel", {"input_filters": {"attributes": {"k": None}}}),
    )
    job = api.run(workflow_id, dataset_id, status="done")
    files = api.files(job)
    assert _selected(files, 0) == [a, b, c]
    assert _selected(files, 1, "np_2d") == [a, b, c]
    # np_2d had no output: output_types applied to all its input images
    assert _selected(files, 2) == [a, b, c]
    assert [img["types"] for img in api.images(dataset_id)] == [{"is_3D": False}] * 3
    assert api.filters(dataset_id) == {"attributes": {"k": 1}, "types": {"is_3D": False}}

    # In a later job, the persisted filters apply
    workflow_id = api.workflow("generic_non_parallel")
    job = api.run(workflow_id, dataset_id, status="done")
    assert _selected(api.files(job), 0) == [a]


def test_input_types_check(run_api):
    api = run_api
    api.task("needs_2d", parallel="generic_parallel.py", input_types={"is_3D": False})
    zarr_dir = str(api.tmp_path / "zarr")
    x, y = f"{zarr_dir}/x", f"{zarr_dir}/y"
    dataset_id = api.dataset(zarr_dir=zarr_dir, images=[image(x), image(y, types={"is_3D": True, "other": False})])

    # Selecting only 2-D images (x has no is_3D type: false) passes the check
    workflow_id = api.workflow(("needs_2d", {"input_filters": {"types": {"is_3D": False}}}))
    job = api.run(workflow_id, dataset_id, status="done")
    assert [name for name in api.files(job) if name.endswith(".args.json")] == ["0_needs_2d/0_par_0000000.args.json"]

    # Selecting both fails on y
    workflow_id = api.workflow("needs_2d")
    job = api.run(workflow_id, dataset_id, status="failed")
    assert job["log"] == (
        f"JOB ERROR in Fractal job {job['id']}:\nTRACEBACK:\nJobExecutionError\n\n"
        "Invalid filtered image list\n"
        "Task input types: task.input_types={'is_3D': False}\n"
        f"Image zarr_url: {y}\n"
        "Image types: {'is_3D': True, 'other': False}\n"
    )
    files = api.files(job)
    assert not any(name.startswith("0_needs_2d/") for name in files)  # no call was made
    history = api.history(dataset_id)
    assert [(item["workflowtask"]["workflow_id"], item["status"]) for item in history[-1:]] == [(workflow_id, "failed")]


def test_zero_images(run_api):
    """Non-parallel and compound init run with no image; parallel and compute calls do not."""
    api = run_api
    api.task("par_typed", parallel="generic_parallel.py", output_types={"done_par": True})
    api.task("compound_typed", non_parallel="generic_compound_init.py", parallel="generic_compound_compute.py",
             output_types={"done_compound": True})
    dataset_id = api.dataset()
    zarr_dir = api.zarr_dir(dataset_id)
    workflow_id = api.workflow(
        ("generic_non_parallel", {"args_non_parallel": {"sleep": 0}}),
        ("par_typed", {"args_parallel": {"attributes": {"x": 1}}}),
        "compound_typed",
    )
    job = api.run(workflow_id, dataset_id, status="done")
    files = api.files(job)
    assert json.loads(files["0_generic_non_parallel/0.args.json"]) == {
        "zarr_urls": [],
        "zarr_dir": zarr_dir,
        "sleep": 0,
    }
    assert not any(name.startswith("1_par_typed/") for name in files)
    assert json.loads(files["2_compound_typed/2.args.json"]) == {"zarr_urls": [], "zarr_dir": zarr_dir}
    assert json.loads(files["2_compound_typed/2.metadiff.json"]) == {"parallelization_list": []}
    assert not any("_par_" in name for name in files)
    # Nothing changes except output_types, which only affect filters
    assert api.images(dataset_id) == []
    assert api.filters(dataset_id) == {"attributes": {}, "types": {"done_par": True, "done_compound": True}}
    assert [item["status"] for item in api.history(dataset_id)] == ["done"] * 3


def test_arguments_of_each_call(run_api):
    """wftask args are merged into the server-provided ones; metas are not arguments."""
    api = run_api
    zarr_dir = str(api.tmp_path / "zarr")
    urls = [f"{zarr_dir}/img{index}" for index in range(2)]
    dataset_id = api.dataset(zarr_dir=zarr_dir + "/", images=[image(url) for url in urls])
    schema = {"type": "object", "properties": {"with_default": {"type": "integer", "default": 3}}}
    api.task("defaults", non_parallel="generic_non_parallel.py", args_schema_non_parallel=schema)
    workflow_id = api.workflow(
        ("generic_non_parallel", {"args_non_parallel": {"p": [1, {"q": None}]}, "meta_non_parallel": {"m": 1}}),
        ("generic_parallel", {"args_parallel": {"attributes": {"seen": True}}, "meta_parallel": {"m": 2}}),
        (
            "generic_compound",
            {"args_non_parallel": {"suffix_np": 1}, "args_parallel": {"suffix": "_c"}},
        ),
        "defaults",
    )
    job = api.run(workflow_id, dataset_id, status="done")
    files = api.files(job)
    assert json.loads(files["0_generic_non_parallel/0.args.json"]) == {
        "zarr_urls": urls,
        "zarr_dir": zarr_dir,  # url-normalised at dataset creation
        "p": [1, {"q": None}],
    }
    for index, url in enumerate(urls):
        text = files[f"1_generic_parallel/1_par_{index:07d}.args.json"].decode()
        assert text == json.dumps({"zarr_url": url, "attributes": {"seen": True}}, indent=2)
    assert json.loads(files["2_generic_compound/2.args.json"]) == {
        "zarr_urls": urls,
        "zarr_dir": zarr_dir,
        "suffix_np": 1,
    }
    for index, url in enumerate(urls):
        assert json.loads(files[f"2_generic_compound/2_par_{index:07d}.args.json"]) == {
            "zarr_url": url,
            "init_args": {"position": index},
            "suffix": "_c",
        }
    call_files = ("args.json", "metadiff.json", "log", "status.json")
    assert sorted(name for name in files if name.startswith("2_generic_compound/")) == sorted(
        [f"2_generic_compound/2.{s}" for s in call_files]
        + [f"2_generic_compound/2_par_{i:07d}.{s}" for i in (0, 1) for s in call_files]
        + [f"2_generic_compound/{prefix}.{s}" for prefix in ("2", "2_par_0000000") for s in ("phase.json", "phase.out")]
    )
    # Default values of the task's arguments are not injected
    assert json.loads(files["3_defaults/3.args.json"]) == {
        "zarr_urls": urls + [url + "_c" for url in urls],
        "zarr_dir": zarr_dir,
    }
    # The log file holds the task's stdout (the mock prints its arguments)
    log = files["1_generic_parallel/1_par_0000001.log"].decode()
    assert log.startswith("arguments: ")
    assert json.loads(log.split("arguments: ", 1)[1].splitlines()[0]) == {
        "zarr_url": urls[1],
        "attributes": {"seen": True},
    }
    images = api.images(dataset_id)
    assert [img["zarr_url"] for img in images] == urls + [url + "_c" for url in urls]
    assert images[0]["attributes"] == {"seen": True}
    assert images[2] == {"zarr_url": urls[0] + "_c", "origin": urls[0], "attributes": {"seen": True, "position": 0},
                         "types": {}}


def test_task_range_and_folder_names(run_api):
    """Only the wftasks of the range run; folders are `<order>_<slug(task name)>`."""
    api = run_api
    api.task("My Task: v1.0 (test)", non_parallel="generic_non_parallel.py")
    dataset_id = api.dataset()
    workflow_id = api.workflow("generic_non_parallel", "My Task: v1.0 (test)", "generic_non_parallel")
    job = api.run(workflow_id, dataset_id, {"first_task_index": 1, "last_task_index": 1}, status="done")
    assert (job["first_task_index"], job["last_task_index"]) == (1, 1)
    files = api.files(job)
    assert sorted(name for name in files if "/" in name) == [
        "1_my_task__v1_0__test_/1.args.json",
        "1_my_task__v1_0__test_/1.log",
        "1_my_task__v1_0__test_/1.phase.json",
        "1_my_task__v1_0__test_/1.phase.out",
        "1_my_task__v1_0__test_/1.status.json",
    ]
    assert 'SUBMIT 1-th task (name="My Task: v1.0 (test)")' in job["log"]
    assert "SUBMIT 0-th" not in job["log"] and "SUBMIT 2-th" not in job["log"]
    history = api.history(dataset_id)
    assert [item["workflowtask"]["order"] for item in history] == [1]
    assert history[0]["workflowtask"]["task"]["name"] == "My Task: v1.0 (test)"
