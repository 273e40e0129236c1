"""The SLURM options of one task phase: configuration file, task meta and job.

Priority, lowest first: `default_slurm_config`; `gpu_slurm_config` when the
meta says `needs_gpu`; the meta keys a task may set; the job's account. The
account never comes from the meta or from `worker_init`.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from fractal_server_slurm_backend.config import (
    BatchingConfig,
    SlurmConfigError,
    SlurmConfigFile,
    SlurmOptions,
    memory_in_mb,
    single_line,
)

ACCOUNT_ADVICE = (
    "SLURM account must be set in the request body of the apply-workflow endpoint, "
    "or by modifying the user properties."
)
_META_STRINGS = ("time", "gres", "gpus", "constraint")
_ACCOUNT_LINE = re.compile(r"\s*#SBATCH\s+(--account\b|-A\b)")


@dataclass(frozen=True)
class SlurmJobOptions:
    """Everything a submission script of a task phase needs, except its calls."""

    partition: str
    cpus_per_task: int
    mem_per_call_mb: int
    """Memory of one call; a job asks for (calls running at once) x this."""
    job_name: str
    batching: BatchingConfig
    constraint: Optional[str] = None
    gres: Optional[str] = None
    gpus: Optional[str] = None
    time: Optional[str] = None
    account: Optional[str] = None
    extra_lines: tuple[str, ...] = ()
    """Lines of the configuration and the meta; `#SBATCH` ones go to the preamble."""
    worker_init_lines: tuple[str, ...] = ()
    """The job's `worker_init`, line by line, run before the calls."""
    user_local_exports: tuple[tuple[str, str], ...] = ()
    """(variable, path relative to the user-side cache folder)."""
    pre_submission_commands: tuple[str, ...] = ()
    """Only the SSH backend runs them; the sudo backend warns that it ignores them."""
    tasks_per_job: Optional[int] = None
    """From the meta of a parallel phase; None lets the batching heuristics choose."""
    parallel_tasks_per_job: Optional[int] = None


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SlurmConfigError(
            f"Invalid {key}={value!r} in WorkflowTask meta: not a positive integer."
        )
    return value


def _text(key: str, value: Any, source: str = "WorkflowTask meta") -> str:
    if not isinstance(value, str):
        raise SlurmConfigError(f"Invalid {key}={value!r} in {source}: not a string.")
    try:
        return single_line(value)
    except ValueError as error:
        raise SlurmConfigError(f"Invalid {key} in {source}: {error}") from None


def _reject_account_line(line: str, source: str) -> str:
    if _ACCOUNT_LINE.match(line):
        raise SlurmConfigError(f"Invalid line in {source}: {line!r}. {ACCOUNT_ADVICE}")
    return line


def _meta_lines(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise SlurmConfigError(
            f"Invalid extra_lines={value!r} in WorkflowTask meta: not a list of strings."
        )
    return [
        _reject_account_line(_text("extra_lines", line), "WorkflowTask meta extra_lines")
        for line in value
    ]


def worker_init_lines(worker_init: Optional[str]) -> tuple[str, ...]:
    """The job's `worker_init` split into lines, blank ones dropped."""
    lines = (line for line in (worker_init or "").splitlines() if line.strip())
    return tuple(_reject_account_line(line, "worker_init") for line in lines)


def _resources(base: SlurmOptions, meta: dict) -> dict[str, Any]:
    """Partition, CPUs, memory and the optional string options: the file's,
    overridden by the meta's non-null values."""
    values = {
        "partition": base.partition,
        "cpus_per_task": base.cpus_per_task,
        "mem_per_call_mb": base.mem,
        **{key: getattr(base, key) for key in _META_STRINGS},
    }
    if meta.get("cpus_per_task") is not None:
        values["cpus_per_task"] = _positive_int("cpus_per_task", meta["cpus_per_task"])
    if meta.get("mem") is not None:
        try:
            values["mem_per_call_mb"] = memory_in_mb(meta["mem"])
        except ValueError as error:
            raise SlurmConfigError(f"Invalid mem in WorkflowTask meta: {error}") from None
    for key in _META_STRINGS:
        if meta.get(key) is not None:
            values[key] = _text(key, meta[key])
    return values


def _meta_batch_sizes(meta: dict) -> dict[str, Optional[int]]:
    return {
        key: None if meta.get(key) is None else _positive_int(key, meta[key])
        for key in ("tasks_per_job", "parallel_tasks_per_job")
    }


def slurm_job_options(
    config: SlurmConfigFile,
    meta: Optional[Mapping[str, Any]],
    *,
    task_name: str,
    parallel: bool,
    slurm_account: Optional[str],
    worker_init: Optional[str],
) -> SlurmJobOptions:
    """The options of one phase of a workflow task.

    `meta` is the wftask's `meta_parallel` for a parallel phase and
    `meta_non_parallel` otherwise; `slurm_account` and `worker_init` are the
    job's. Raises SlurmConfigError when the options cannot make a valid job.
    """
    meta = dict(meta or {})
    if "account" in meta:
        raise SlurmConfigError(
            f"Invalid account={meta['account']} property in WorkflowTask meta attribute. "
            f"{ACCOUNT_ADVICE}"
        )
    needs_gpu = meta.get("needs_gpu") is True
    base = config.options_for(needs_gpu=needs_gpu)
    values = _resources(base, meta)
    for key, name in [
        ("partition", "partition"),
        ("cpus_per_task", "cpus_per_task"),
        ("mem_per_call_mb", "mem"),
    ]:
        if values[key] is None:
            sections = "default_slurm_config" + (" or gpu_slurm_config" if needs_gpu else "")
            raise SlurmConfigError(
                f"SLURM option {name} is not set for task {task_name!r}: set it in "
                f"{sections} of FRACTAL_SLURM_CONFIG_FILE."
            )
    if meta.get("extra_lines") is not None:
        extra_lines = list(base.extra_lines or []) + _meta_lines(meta["extra_lines"])
    else:
        extra_lines = list(base.extra_lines or [])
    account = _text("slurm_account", slurm_account, "the job") if slurm_account else base.account
    return SlurmJobOptions(
        **values,
        **(_meta_batch_sizes(meta) if parallel else {}),
        job_name=_text("name", task_name, "the task").replace(" ", "_"),
        batching=config.batching_config,
        account=account,
        extra_lines=tuple(dict.fromkeys(extra_lines)),
        worker_init_lines=worker_init_lines(worker_init),
        user_local_exports=tuple((config.user_local_exports or {}).items()),
        pre_submission_commands=tuple(base.pre_submission_commands or ()),
    )
