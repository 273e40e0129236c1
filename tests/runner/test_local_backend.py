"""Local backends: `parallel_tasks_per_job` chunks (runner-v2.md section 6, backends.md sections 2-3)."""
import json
import re

from .conftest import RunnerApi, image

SLEEP = 0.8


def call_times(files: dict, folder: str) -> list[tuple[float, float]]:
    """(start, end) of each parallel call of a task folder, in call order."""
    times = []
    names = sorted(
        name for name in files if name.startswith(f"{folder}/") and "_par_" in name and name.endswith(".log")
    )
    for name in names:
        log = files[name].decode()
        start = float(re.search(r"^start=(\S+)$", log, re.M).group(1))
        end = float(re.search(r"^end=(\S+)$", log, re.M).group(1))
        times.append((start, end))
    return times


def assert_chunks(times: list[tuple[float, float]], size: int) -> None:
    """Chunks of `size` consecutive calls: each chunk starts after the previous one
    ended, and the calls of a chunk run concurrently.

    Concurrency is checked loosely, to bear a loaded machine (process start-up
    times vary): the calls of a chunk take less wall time than their durations
    added up, i.e. they were not run one after the other.
    """
    chunks = [times[i : i + size] for i in range(0, len(times), size)]
    for previous, following in zip(chunks, chunks[1:]):
        assert min(start for start, _ in following) >= max(end for _, end in previous), times
    for chunk in chunks:
        if len(chunk) > 1:
            span = max(end for _, end in chunk) - min(start for start, _ in chunk)
            assert span < sum(end - start for start, end in chunk), times


def parallel_dataset(api: RunnerApi, count: int) -> int:
    zarr_dir = str(api.tmp_path / "zarr")
    return api.dataset(zarr_dir=zarr_dir, images=[image(f"{zarr_dir}/img{index}") for index in range(count)])


TIMED = {"sleep": SLEEP, "print_times": True}


def test_parallel_tasks_per_job_from_wftask_meta(run_api):
    api = run_api
    dataset_id = parallel_dataset(api, 4)
    workflow_id = api.workflow(
        ("generic_parallel", {"args_parallel": TIMED, "meta_parallel": {"parallel_tasks_per_job": 2}}),
        # no chunking: all calls at once
        ("generic_parallel", {"args_parallel": TIMED}),
        # compound compute calls are chunked by meta_parallel too; the init ignores meta_non_parallel
        (
            "generic_compound",
            {
                "args_non_parallel": {"print_times": True},
                "args_parallel": {**TIMED, "suffix": "_c"},
                "meta_non_parallel": {"parallel_tasks_per_job": 1},
                "meta_parallel": {"parallel_tasks_per_job": 3},
                "input_filters": {"attributes": {}, "types": {}},
            },
        ),
    )
    job = api.run(workflow_id, dataset_id, status="done")
    files = api.files(job)
    times = call_times(files, "0_generic_parallel")
    assert len(times) == 4
    assert_chunks(times, 2)
    times = call_times(files, "1_generic_parallel")
    assert len(times) == 4
    assert_chunks(times, 4)
    times = call_times(files, "2_generic_compound")
    assert len(times) == 4
    assert_chunks(times, 3)
    assert len(api.images(dataset_id)) == 8


def test_only_the_wftask_meta_is_read(run_api):
    """The task's meta initialises the wftask's; a later PATCH replaces it."""
    api = run_api
    api.task("chunked", parallel="generic_parallel.py", meta_parallel={"parallel_tasks_per_job": 1})
    dataset_id = parallel_dataset(api, 3)
    workflow_id = api.workflow()
    wftask = api.add_wftask(workflow_id, "chunked", args_parallel=TIMED)
    assert wftask["meta_parallel"] == {"parallel_tasks_per_job": 1}
    response = api.patch(
        f"{api.project_url}/workflow/{workflow_id}/wftask/{wftask['id']}/",
        json={"meta_parallel": {"unrelated": True}},
    )
    assert response.status_code == 200, response.json
    job = api.run(workflow_id, dataset_id, status="done")
    assert_chunks(call_times(api.files(job), "0_chunked"), 3)


def test_parallel_tasks_per_job_from_local_config_file(other_app, runner_user, tmp_path):
    config = tmp_path / "local.json"
    config.write_text(json.dumps({"parallel_tasks_per_job": 1}))
    app = other_app(FRACTAL_LOCAL_CONFIG_FILE=str(config))
    api = RunnerApi(app.test_client(), runner_user, tmp_path)
    dataset_id = parallel_dataset(api, 3)
    workflow_id = api.workflow(
        ("generic_parallel", {"args_parallel": {"sleep": 0.3, "print_times": True}}),
        # the wftask meta wins over the file
        ("generic_parallel", {"args_parallel": TIMED, "meta_parallel": {"parallel_tasks_per_job": 3}}),
    )
    job = api.run(workflow_id, dataset_id, status="done")
    files = api.files(job)
    assert_chunks(call_times(files, "0_generic_parallel"), 1)
    assert_chunks(call_times(files, "1_generic_parallel"), 3)

    # An invalid file makes the job fail with an unexpected error
    config.write_text(json.dumps({"parallel_tasks_per_job": 1, "unknown": 2}))
    workflow_id = api.workflow("generic_parallel")
    job = api.run(workflow_id, dataset_id, status="failed")
    assert job["log"].startswith(f"UNKNOWN ERROR in Fractal job {job['id']}\nTRACEBACK:\n")
    assert str(config) in job["log"]
