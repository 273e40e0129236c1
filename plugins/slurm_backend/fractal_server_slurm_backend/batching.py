"""How the parallel calls of a task are grouped into SLURM jobs.

A task's N calls become ceil(N/T) SLURM jobs of T calls each (the last may be
shorter), each running at most P calls at a time. T and P come from the task
meta when it sets both; otherwise they are the largest that fit the target
limits of `batching_config`, then the largest that fit its maximum limits,
and, if that still makes too many jobs, calls queue inside max_num_jobs jobs.
"""

import logging
import math
from collections.abc import Sequence
from typing import Optional, TypeVar

from fractal_server_slurm_backend.config import BatchingConfig, SlurmConfigError

Item = TypeVar("Item")
_logger = logging.getLogger(__name__)


def _calls_that_fit(cpus: int, mem: int, cpu_limit: int, mem_limit: int) -> int:
    """How many calls fit at once in a job under the limits (at least one)."""
    if cpus > cpu_limit or mem > mem_limit:
        return 1
    return min(cpu_limit // cpus, mem_limit // mem)


def _check_meta_sizes(n_calls, cpus, mem, tasks_per_job, parallel_tasks_per_job, limits, logger):
    """Sizes chosen in the meta must respect the maxima; over a target, warn."""
    sizes = [
        (
            "CPUs per job",
            parallel_tasks_per_job * cpus,
            limits.target_cpus_per_job,
            limits.max_cpus_per_job,
        ),
        (
            "memory per job (MB)",
            parallel_tasks_per_job * mem,
            limits.target_mem_per_job,
            limits.max_mem_per_job,
        ),
        (
            "number of jobs",
            math.ceil(n_calls / tasks_per_job),
            limits.target_num_jobs,
            limits.max_num_jobs,
        ),
    ]
    for what, value, _, maximum in sizes:
        if value > maximum:
            raise SlurmConfigError(
                f"tasks_per_job={tasks_per_job} and parallel_tasks_per_job="
                f"{parallel_tasks_per_job} give {what} {value}, over the maximum {maximum} "
                "of batching_config."
            )
    for what, value, target, _ in sizes:
        if value > target:
            logger.warning(f"SLURM {what} {value} is over the target {target} of batching_config.")


def batch_sizes(
    n_calls: int,
    cpus: int,
    mem: int,
    tasks_per_job: Optional[int],
    parallel_tasks_per_job: Optional[int],
    limits: BatchingConfig,
    *,
    logger: logging.Logger = _logger,
) -> tuple[int, int]:
    """(T, P): calls per SLURM job, and calls running at once in each job.

    `cpus` and `mem` (MB) are one call's needs; `tasks_per_job` and
    `parallel_tasks_per_job` the task meta's, both or neither. Raises
    SlurmConfigError if the calls cannot fit the maximum limits.
    """
    if (tasks_per_job is None) != (parallel_tasks_per_job is None):
        raise SlurmConfigError(
            "WorkflowTask meta must set both tasks_per_job and parallel_tasks_per_job, "
            f"or neither (got tasks_per_job={tasks_per_job}, "
            f"parallel_tasks_per_job={parallel_tasks_per_job})."
        )
    if cpus > limits.max_cpus_per_job:
        raise SlurmConfigError(
            f"cpus_per_task={cpus} is over max_cpus_per_job={limits.max_cpus_per_job} "
            "of batching_config."
        )
    if mem > limits.max_mem_per_job:
        raise SlurmConfigError(
            f"mem={mem}M per task is over max_mem_per_job={limits.max_mem_per_job}M "
            "of batching_config."
        )
    if tasks_per_job is not None:
        parallel = min(parallel_tasks_per_job, tasks_per_job)
        _check_meta_sizes(n_calls, cpus, mem, tasks_per_job, parallel, limits, logger)
        return tasks_per_job, parallel
    parallel = _calls_that_fit(cpus, mem, limits.target_cpus_per_job, limits.target_mem_per_job)
    if math.ceil(n_calls / parallel) <= limits.target_num_jobs:
        return parallel, parallel
    parallel = _calls_that_fit(cpus, mem, limits.max_cpus_per_job, limits.max_mem_per_job)
    if math.ceil(n_calls / parallel) <= limits.max_num_jobs:
        return parallel, parallel
    return math.ceil(n_calls / limits.max_num_jobs), parallel


def split_into_batches(items: Sequence[Item], tasks_per_job: int) -> list[list[Item]]:
    """Consecutive batches of `tasks_per_job` items; the last may be shorter."""
    if tasks_per_job < 1:
        raise ValueError(f"tasks_per_job must be positive, not {tasks_per_job}")
    return [list(items[i : i + tasks_per_job]) for i in range(0, len(items), tasks_per_job)]
