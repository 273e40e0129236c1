"""Task outputs: reading, merging parallel outputs, applying them to the dataset
(runner-v2.md sections 4.4, 4.5 and 5)."""
import json

import pytest

from fractal_server.runner import workflow as runner_workflow

from .conftest import image


def job_error(job: dict, message: str) -> str:
    """The report of a JobExecutionError raised by a rule of the core: the message as it is."""
    return f"JOB ERROR in Fractal job {job['id']}:\nTRACEBACK:\nJobExecutionError\n\n{message}"


def unknown_error_prefix(job: dict) -> str:
    return f"UNKNOWN ERROR in Fractal job {job['id']}\nTRACEBACK:\nTraceback (most recent call last):\n"


@pytest.fixture
def images3(run_api):
    """A dataset with three images; returns (dataset id, zarr_dir, urls)."""
    zarr_dir = str(run_api.tmp_path / "zarr")
    urls = [f"{zarr_dir}/img{index}" for index in range(3)]
    dataset_id = run_api.dataset(
        zarr_dir=zarr_dir,
        images=[
            image(urls[0], attributes={"a": 1, "b": "x"}, types={"t1": True}),
            image(urls[1], origin=urls[0], attributes={"a": 2, "b": "y"}, types={"t1": True, "t2": False}),
            image(urls[2], attributes={"a": 3}),
        ],
    )
    return dataset_id, zarr_dir, urls


def run_output(api, dataset_id, output, *, task="generic_non_parallel", status="done", raw=False, **wftask):
    """Run one non-parallel task that writes `output` (verbatim text if `raw`)."""
    key = "raw_output" if raw else "output"
    workflow_id = api.workflow((task, {"args_non_parallel": {key: output}, **wftask}))
    return api.run(workflow_id, dataset_id, status=status)


def test_update_existing_images(run_api, images3):
    api = run_api
    dataset_id, zarr_dir, urls = images3
    api.task("np_typed", non_parallel="generic_non_parallel.py", output_types={"t3": True, "t1": False})
    output = {
        "image_list_updates": [
            # origin equal to zarr_url is accepted; a trailing slash is normalised away
            {"zarr_url": urls[1] + "/", "origin": urls[1], "attributes": {"b": None, "c": 3.5}, "types": {"t2": True}},
            {"zarr_url": urls[0], "attributes": {"a": "one", "missing": None}, "unknown_key": "ignored"},
        ]
    }
    run_output(api, dataset_id, output, task="np_typed")
    assert api.images(dataset_id) == [
        {
            "zarr_url": urls[0],
            "origin": None,
            "attributes": {"a": "one", "b": "x"},
            "types": {"t1": False, "t3": True},
        },
        {
            "zarr_url": urls[1],
            "origin": urls[0],  # kept
            "attributes": {"a": 2, "c": 3.5},  # b removed by null
            "types": {"t1": False, "t2": True, "t3": True},  # output_types win
        },
        # Not in the updates: untouched, although selected
        {"zarr_url": urls[2], "origin": None, "attributes": {"a": 3}, "types": {}},
    ]
    assert api.filters(dataset_id) == {"attributes": {}, "types": {"t3": True, "t1": False}}


def test_cannot_edit_image_with_different_origin(run_api, images3):
    api = run_api
    dataset_id, _, urls = images3
    output = {"image_list_updates": [{"zarr_url": urls[1], "origin": urls[2]}]}
    job = run_output(api, dataset_id, output, status="failed")
    assert job["log"] == job_error(
        job, f"Cannot edit an image with zarr_url different from origin.\nzarr_url={urls[1]}\norigin={urls[2]}"
    )


def test_new_images(run_api, images3):
    api = run_api
    dataset_id, zarr_dir, urls = images3
    api.task("np_new", non_parallel="generic_non_parallel.py", output_types={"t1": False, "new": True})
    output = {
        "image_list_updates": [
            # origin exists: start from a copy of its attributes and types
            {
                "zarr_url": f"{zarr_dir}/derived/",
                "origin": urls[1],
                "attributes": {"b": None, "d": True},
                "types": {"t2": True, "t4": True},
            },
            # origin does not exist: stored as given, nothing copied
            {"zarr_url": f"{zarr_dir}/orphan", "origin": f"{zarr_dir}/nowhere", "attributes": {"e": 1}},
            # no origin
            {"zarr_url": f"{zarr_dir}/plain"},
            # an update of an existing image in the same output
            {"zarr_url": urls[2], "attributes": {"a": 30}},
        ]
    }
    run_output(api, dataset_id, output, task="np_new")
    images = api.images(dataset_id)
    assert [img["zarr_url"] for img in images] == urls + [
        f"{zarr_dir}/derived",
        f"{zarr_dir}/orphan",
        f"{zarr_dir}/plain",
    ]
    assert images[2] == {
        "zarr_url": urls[2],
        "origin": None,
        "attributes": {"a": 30},
        "types": {"t1": False, "new": True},
    }
    assert images[3] == {
        "zarr_url": f"{zarr_dir}/derived",
        "origin": urls[1],
        "attributes": {"a": 2, "d": True},
        "types": {"t1": False, "t2": True, "t4": True, "new": True},
    }
    assert images[4] == {
        "zarr_url": f"{zarr_dir}/orphan",
        "origin": f"{zarr_dir}/nowhere",
        "attributes": {"e": 1},
        "types": {"t1": False, "new": True},
    }
    assert images[5] == {
        "zarr_url": f"{zarr_dir}/plain",
        "origin": None,
        "attributes": {},
        "types": {"t1": False, "new": True},
    }
    # Images not in the updates are untouched
    assert images[0]["types"] == {"t1": True}


def test_new_image_must_be_inside_zarr_dir(run_api, images3):
    api = run_api
    dataset_id, zarr_dir, urls = images3
    outside = zarr_dir.rsplit("/", 1)[0] + "/elsewhere/img"
    job = run_output(api, dataset_id, {"image_list_updates": [{"zarr_url": outside}]}, status="failed")
    assert job["log"] == job_error(
        job,
        "Cannot create image if zarr_dir is not a parent directory of zarr_url.\n"
        f"zarr_dir: {zarr_dir}\nzarr_url: {outside}",
    )
    job = run_output(api, dataset_id, {"image_list_updates": [{"zarr_url": zarr_dir + "/"}]}, status="failed")
    assert job["log"].startswith(job_error(job, "Cannot create image if zarr_url is equal to zarr_dir."))
    assert zarr_dir in job["log"]
    # The test is a plain string prefix
    sibling = zarr_dir + "_sibling/img"
    run_output(api, dataset_id, {"image_list_updates": [{"zarr_url": sibling}]})
    assert api.image_urls(dataset_id) == urls + [sibling]
    # Failed jobs changed nothing
    assert [item["status"] for item in api.history(dataset_id)] == ["failed", "failed", "done"]


def test_removals(run_api, images3):
    api = run_api
    dataset_id, zarr_dir, urls = images3
    # Any image of the dataset may be removed, selected or not
    output = {
        "image_list_removals": [urls[2] + "/"],
        "image_list_updates": [{"zarr_url": urls[0], "attributes": {"z": 0}}],
    }
    run_output(api, dataset_id, output, input_filters={"attributes": {"a": 1}})
    images = api.images(dataset_id)
    assert [img["zarr_url"] for img in images] == urls[:2]
    assert images[0]["attributes"] == {"a": 1, "b": "x", "z": 0}

    missing = f"{zarr_dir}/missing"
    job = run_output(api, dataset_id, {"image_list_removals": [missing]}, status="failed")
    assert job["log"] == job_error(job, f"Cannot remove missing image (zarr_url={missing}).")
    assert api.image_urls(dataset_id) == urls[:2]


def test_parallel_removals_and_updates(run_api, images3):
    api = run_api
    dataset_id, zarr_dir, urls = images3
    workflow_id = api.workflow(
        ("generic_parallel", {"args_parallel": {"remove": True}, "input_filters": {"attributes": {"a": 2}}}),
        ("generic_parallel", {"args_parallel": {"new_image_suffix": "_new", "attributes": {"k": "v"}}}),
    )
    api.run(workflow_id, dataset_id, status="done")
    images = api.images(dataset_id)
    # New images are appended in call order
    assert [img["zarr_url"] for img in images] == [urls[0], urls[2], urls[0] + "_new", urls[2] + "_new"]
    assert images[2] == {
        "zarr_url": urls[0] + "_new",
        "origin": urls[0],
        "attributes": {"a": 1, "b": "x", "k": "v"},
        "types": {"t1": True},
    }


def test_no_updates_means_every_input_image_was_modified(run_api, images3):
    """Without updates and removals, output_types are applied to the selected images."""
    api = run_api
    dataset_id, zarr_dir, urls = images3
    api.task("par_mark", parallel="generic_parallel.py", output_types={"par_marked": True})
    for name in ("m1", "m2", "m3"):
        api.task(f"np_{name}", non_parallel="generic_non_parallel.py", output_types={name: True})
    workflow_id = api.workflow(
        # parallel calls with empty outputs, on every image
        ("par_mark", {"args_parallel": {"output": {}}}),
        # no output file at all
        ("np_m1", {"input_filters": {"attributes": {"a": 1}}}),
        # `{}` output
        (
            "np_m2",
            {
                "args_non_parallel": {"raw_output": "{}"},
                "input_filters": {"attributes": {"a": 2}, "types": {"m1": False}},
            },
        ),
        # only filters in the output
        (
            "np_m3",
            {
                "args_non_parallel": {"output": {"filters": {"attributes": {"f": None}}}},
                "input_filters": {"attributes": {"a": 3}, "types": {"m1": False, "m2": False}},
            },
        ),
    )
    job = api.run(workflow_id, dataset_id, status="done")
    images = api.images(dataset_id)
    assert [img["types"] for img in images] == [
        {"t1": True, "par_marked": True, "m1": True},
        {"t1": True, "t2": False, "par_marked": True, "m2": True},
        {"par_marked": True, "m3": True},
    ]
    assert [img["attributes"] for img in images] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3}]
    # A null attribute filter is stored as null
    assert api.filters(dataset_id) == {
        "attributes": {"f": None},
        "types": {"par_marked": True, "m1": True, "m2": True, "m3": True},
    }
    files = api.files(job)
    assert files["0_par_mark/0_par_0000002.metadiff.json"] == b"{}"
    assert "1_np_m1/1.metadiff.json" not in files
    assert files["2_np_m2/2.metadiff.json"] == b"{}"


def test_duplicated_urls(run_api, images3):
    api = run_api
    dataset_id, zarr_dir, urls = images3
    output = {
        "image_list_updates": [
            {"zarr_url": urls[0]},
            {"zarr_url": urls[1]},
            {"zarr_url": urls[0] + "/", "attributes": {"x": 1}},
        ],
        "image_list_removals": [urls[1], urls[2]],
    }
    job = run_output(api, dataset_id, output, status="failed")
    assert job["log"].startswith(unknown_error_prefix(job))
    assert (
        "TaskOutput (3 image_list_updates and 2 image_list_removals) has non-unique zarr_urls:\n"
        f"{urls[0]}\n{urls[1]}\n"
    ) in job["log"]

    # Exact duplicates of updates from parallel calls are merged; removals are not
    same_update = {"image_list_updates": [{"zarr_url": urls[0], "attributes": {"same": 1}}]}
    workflow_id = api.workflow(("generic_parallel", {"args_parallel": {"output": same_update}}))
    api.run(workflow_id, dataset_id, status="done")
    assert api.images(dataset_id)[0]["attributes"] == {"a": 1, "b": "x", "same": 1}
    removal = {"image_list_removals": [urls[2]]}
    workflow_id = api.workflow(
        ("generic_parallel", {"args_parallel": {"output": removal}, "input_filters": {"types": {"t1": True}}})
    )
    job = api.run(workflow_id, dataset_id, status="failed")
    assert f"TaskOutput (0 image_list_updates and 2 image_list_removals) has non-unique zarr_urls:\n{urls[2]}" in (
        job["log"]
    )
    assert api.image_urls(dataset_id) == urls


def test_parallel_filters_must_agree(run_api, images3):
    api = run_api
    dataset_id, zarr_dir, urls = images3
    same = {"attributes": {"p": 1}, "types": {"q": True}}
    workflow_id = api.workflow(("generic_parallel", {"args_parallel": {"filters": same}}))
    api.run(workflow_id, dataset_id, status="done")
    assert api.filters(dataset_id) == same

    different = {"attributes": {"p": 2}, "types": {}}
    # (the new dataset filters would select no image: the wftask lifts them)
    lift = {"attributes": {"p": None}, "types": {"q": False}}
    arguments = {"filters": same, "filters_by_url": {urls[1]: different}}
    workflow_id = api.workflow(("generic_parallel", {"args_parallel": arguments, "input_filters": lift}))
    job = api.run(workflow_id, dataset_id, status="failed")
    assert job["log"].startswith(unknown_error_prefix(job))
    assert "current_new_filters=" in job["log"] and "but last_new_filters=" in job["log"]
    assert api.filters(dataset_id) == same

    # An absent `filters` counts as the empty object
    arguments = {"filters_by_url": {urls[1]: {"attributes": {}, "types": {}}}}
    workflow_id = api.workflow(("generic_parallel", {"args_parallel": arguments, "input_filters": lift}))
    job = api.run(workflow_id, dataset_id, status="done")
    assert len([name for name in api.files(job) if name.endswith(".metadiff.json")]) == 3
    assert api.filters(dataset_id) == same


def test_filters_update_and_type_filters_set_twice(run_api, images3):
    api = run_api
    dataset_id, zarr_dir, urls = images3
    api.set_filters(dataset_id, {"attributes": {"keep": 1, "over": 1}, "types": {"keep_t": True, "over_t": True}})
    api.task("np_out_types", non_parallel="generic_non_parallel.py", output_types={"o1": True, "over_t": False})
    output = {"filters": {"attributes": {"over": None, "new": "n"}, "types": {"o2": False}}}
    # (no image is selected: a non-parallel task runs anyway)
    run_output(api, dataset_id, output, task="np_out_types")
    assert api.filters(dataset_id) == {
        "attributes": {"keep": 1, "over": None, "new": "n"},
        "types": {"keep_t": True, "over_t": False, "o1": True, "o2": False},
    }
    job = run_output(api, dataset_id, {"filters": {"types": {"o1": False}}}, task="np_out_types", status="failed")
    assert job["log"].startswith(
        f"JOB ERROR in Fractal job {job['id']}:\nTRACEBACK:\nJobExecutionError\n\n"
        "Some type filters are being set twice, for task 'np_out_types'."
    )
    assert "o1" in job["log"]


def test_invalid_outputs(run_api, images3):
    api = run_api
    dataset_id, zarr_dir, urls = images3
    job = run_output(api, dataset_id, {"image_list_updates": [], "unknown": 1}, status="failed")
    assert job["log"].startswith(
        f"JOB ERROR in Fractal job {job['id']}:\nTRACEBACK:\nJobExecutionError\n\n"
        "Validation of task output failed.\nOriginal error: "
    )
    assert "Original data: " in job["log"]

    for bad_update in (
        {"zarr_url": "relative/path"},
        {"zarr_url": "s3://bucket/img"},
        {"zarr_url": urls[0], "attributes": {"list": [1]}},
        {"zarr_url": urls[0], "types": {"t": "maybe"}},
    ):
        job = run_output(api, dataset_id, {"image_list_updates": [bad_update]}, status="failed")
        assert "Validation of task output failed." in job["log"], bad_update

    # Invalid JSON: an unexpected error
    job = run_output(api, dataset_id, "{not json", raw=True, status="failed")
    assert job["log"].startswith(unknown_error_prefix(job))
    assert "JSONDecodeError" in job["log"]

    # The init output of a compound task has its own model
    workflow_id = api.workflow(
        ("generic_compound", {"args_non_parallel": {"extra_items": [{"zarr_url": urls[0], "unknown": 1}]}})
    )
    job = api.run(workflow_id, dataset_id, status="failed")
    assert "Validation of init-task output failed.\nOriginal error: " in job["log"]
    assert job["log"].startswith(f"JOB ERROR in Fractal job {job['id']}:\n")

    assert api.images(dataset_id)[0]["attributes"] == {"a": 1, "b": "x"}


def test_compound_parallelization_list_is_deduplicated(run_api, images3):
    api = run_api
    dataset_id, zarr_dir, urls = images3
    extra = [
        {"zarr_url": urls[0], "init_args": {"position": 0}},  # exact duplicate of the first item
        {"zarr_url": urls[0] + "/", "init_args": {"position": 0}},  # duplicate once normalised
        {"zarr_url": urls[1], "init_args": {"position": 99}},  # different init_args: kept
    ]
    wftask = {
        "args_non_parallel": {"extra_items": extra},
        "args_parallel": {"suffix": "_s"},
        "input_filters": {"attributes": {"a": 1}},
    }
    workflow_id = api.workflow(("generic_compound", wftask))
    job = api.run(workflow_id, dataset_id, status="done")
    files = api.files(job)
    calls = sorted(name for name in files if name.endswith(".args.json") and "_par_" in name)
    assert calls == ["0_generic_compound/0_par_0000000.args.json", "0_generic_compound/0_par_0000001.args.json"]
    assert json.loads(files[calls[1]]) == {"zarr_url": urls[1], "init_args": {"position": 99}, "suffix": "_s"}
    images = api.images(dataset_id)
    assert [img["zarr_url"] for img in images] == urls + [urls[0] + "_s", urls[1] + "_s"]
    assert images[4]["attributes"] == {"a": 2, "b": "y", "position": 99}


def test_too_many_parallelization_items(run_api, images3, monkeypatch):
    api = run_api
    dataset_id, zarr_dir, urls = images3
    monkeypatch.setattr(runner_workflow, "MAX_PARALLELIZATION_ITEMS", 2)
    workflow_id = api.workflow("generic_parallel")
    job = api.run(workflow_id, dataset_id, status="failed")
    assert job["log"].startswith(
        f"JOB ERROR in Fractal job {job['id']}:\nTRACEBACK:\nJobExecutionError\n\n"
        "Too many parallelization items."
    )
    details = job["log"].split("Too many parallelization items.", 1)[1]
    assert "3" in details and "2" in details  # the count and the limit
    assert not any("_par_" in name for name in api.files(job))

    wftask = {
        "input_filters": {"attributes": {"a": 1}},
        "args_non_parallel": {"extra_items": [{"zarr_url": urls[1]}, {"zarr_url": urls[2]}]},
    }
    workflow_id = api.workflow(("generic_compound", wftask))
    job = api.run(workflow_id, dataset_id, status="failed")
    assert "Too many parallelization items." in job["log"]

    monkeypatch.setattr(runner_workflow, "MAX_PARALLELIZATION_ITEMS", 3)
    workflow_id = api.workflow("generic_parallel")
    api.run(workflow_id, dataset_id, status="done")
