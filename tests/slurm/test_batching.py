"""Grouping parallel calls into SLURM jobs (spec §6), with the spec's numeric table."""

import logging

import pytest

from fractal_server_slurm_backend.batching import batch_sizes, split_into_batches
from fractal_server_slurm_backend.config import BatchingConfig, SlurmConfigError

LIMITS = BatchingConfig(
    target_cpus_per_job=4,
    max_cpus_per_job=8,
    target_mem_per_job=8000,
    max_mem_per_job=16000,
    target_num_jobs=2,
    max_num_jobs=4,
)


@pytest.mark.parametrize(
    "n_calls, cpus, mem, meta_sizes, sizes, batch_lengths",
    [
        (3, 1, 1000, (None, None), (4, 4), [3]),
        (10, 1, 1000, (None, None), (8, 8), [8, 2]),
        (10, 2, 4000, (None, None), (4, 4), [4, 4, 2]),
        (20, 4, 2000, (None, None), (5, 2), [5, 5, 5, 5]),
        (100, 1, 1000, (None, None), (25, 8), [25, 25, 25, 25]),
        (10, 1, 1000, (5, 2), (5, 2), [5, 5]),
    ],
)
def test_the_table_of_the_spec(n_calls, cpus, mem, meta_sizes, sizes, batch_lengths):
    assert batch_sizes(n_calls, cpus, mem, *meta_sizes, LIMITS) == sizes
    batches = split_into_batches(list(range(n_calls)), sizes[0])
    assert [len(batch) for batch in batches] == batch_lengths
    assert [call for batch in batches for call in batch] == list(range(n_calls))


def test_a_call_over_the_targets_runs_alone_in_its_job():
    assert batch_sizes(2, 6, 1000, None, None, LIMITS) == (1, 1)
    assert batch_sizes(2, 1, 9000, None, None, LIMITS) == (1, 1)


def test_calls_queue_inside_the_maximum_number_of_jobs():
    assert batch_sizes(9, 8, 1000, None, None, LIMITS) == (3, 1)


def test_meta_parallel_tasks_is_at_most_the_tasks_per_job():
    assert batch_sizes(10, 1, 1000, 3, 5, LIMITS) == (3, 3)


def test_meta_sizes_over_the_targets_only_warn(caplog):
    with caplog.at_level(logging.WARNING):
        assert batch_sizes(12, 1, 3000, 4, 4, LIMITS) == (4, 4)
    assert [record.getMessage() for record in caplog.records] == [
        "SLURM memory per job (MB) 12000 is over the target 8000 of batching_config.",
        "SLURM number of jobs 3 is over the target 2 of batching_config.",
    ]


@pytest.mark.parametrize(
    "n_calls, cpus, mem, meta_sizes, message",
    [
        (
            4,
            1,
            1000,
            (2, None),
            "WorkflowTask meta must set both tasks_per_job and parallel_tasks_per_job, or "
            "neither (got tasks_per_job=2, parallel_tasks_per_job=None).",
        ),
        (
            4,
            1,
            1000,
            (None, 2),
            "WorkflowTask meta must set both tasks_per_job and parallel_tasks_per_job, or "
            "neither (got tasks_per_job=None, parallel_tasks_per_job=2).",
        ),
        (
            4,
            9,
            1000,
            (None, None),
            "cpus_per_task=9 is over max_cpus_per_job=8 of batching_config.",
        ),
        (
            4,
            1,
            16001,
            (None, None),
            "mem=16001M per task is over max_mem_per_job=16000M of batching_config.",
        ),
        (
            16,
            3,
            1000,
            (4, 3),
            "tasks_per_job=4 and parallel_tasks_per_job=3 give CPUs per job 9, over the "
            "maximum 8 of batching_config.",
        ),
        (
            16,
            1,
            9000,
            (2, 2),
            "tasks_per_job=2 and parallel_tasks_per_job=2 give memory per job (MB) 18000, "
            "over the maximum 16000 of batching_config.",
        ),
        (
            10,
            1,
            1000,
            (2, 1),
            "tasks_per_job=2 and parallel_tasks_per_job=1 give number of jobs 5, over the "
            "maximum 4 of batching_config.",
        ),
    ],
)
def test_errors(n_calls, cpus, mem, meta_sizes, message):
    with pytest.raises(SlurmConfigError) as error:
        batch_sizes(n_calls, cpus, mem, *meta_sizes, LIMITS)
    assert str(error.value) == message


def test_batches_need_a_positive_size():
    with pytest.raises(ValueError):
        split_into_batches([1, 2], 0)
    assert split_into_batches([], 3) == []
