"""The sequential loop over a job's workflow tasks (`runner-v2.md` sections 3-6).

Backend-agnostic: task calls are handed to a `JobRunner`; everything else
(which images a task sees, its arguments, reading and applying its output,
history and snapshots) happens here.
"""
import json
import logging
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fractal_server.runner.backend import CallOutcome, CallStatus, TaskCall
from fractal_server.runner.dataset_state import DatasetState, Image
from fractal_server.runner.errors import JobExecutionError, TaskExecutionError
from fractal_server.runner.phases import PhaseKey, PhaseRunner
from fractal_server.runner.task_output import (
    InitTaskOutput,
    TaskOutput,
    deduplicate,
    merge_outputs,
    read_output,
)
from fractal_server.schemas.validators import FORBIDDEN_COMMAND_CHARS
from fractal_server.slugs import slugify

MAX_PARALLELIZATION_ITEMS = 20000
SNAPSHOT_FILES = ("history.json", "filters.json", "images.json")
START_STATE_FILE = "job_start_state.json"
"""The dataset's images and filters as the job read them; removed when the job ends."""


@dataclass(frozen=True)
class WorkflowTaskSpec:
    """What the loop needs to know about one workflow task (a snapshot of the rows)."""

    id: int
    workflow_id: int
    order: int
    task_type: str
    input_filters: dict
    args_non_parallel: dict
    args_parallel: dict
    meta_non_parallel: dict
    meta_parallel: dict
    task: dict
    """`{id, name, type, command_non_parallel, command_parallel, source,
    version, input_types, output_types}`."""

    @property
    def subfolder(self) -> str:
        return f"{self.order}_{slugify(self.task['name'])}"

    def history_item(self, status: str) -> dict:
        return {
            "workflowtask": {
                "id": self.id,
                "workflow_id": self.workflow_id,
                "order": self.order,
                "input_filters": self.input_filters,
                "task_id": self.task["id"],
                "task": self.task,
            },
            "status": status,
            "parallelization": {},
        }


@dataclass
class WorkflowRun:
    """The loop over the job's tasks; it resumes after the tasks that `new_history` lists as done."""

    working_dir: Path
    phases: PhaseRunner
    state: DatasetState
    logger: logging.Logger
    new_history: list[dict] = field(default_factory=list)

    def run(self, wftasks: list[WorkflowTaskSpec]) -> None:
        for wftask in wftasks[len(self.new_history) :]:
            name = wftask.task["name"]
            self.logger.info(f'SUBMIT {wftask.order}-th task (name="{name}")')
            (self.working_dir / wftask.subfolder).mkdir(parents=True, exist_ok=True)
            selected = self.state.select(wftask.input_filters, wftask.task["input_types"])
            output = self._run_task(wftask, selected)
            self.state.apply(output, selected, name, wftask.task["output_types"])
            self.new_history.append(wftask.history_item("done"))
            self.write_snapshots()
            self.logger.info(f'END    {wftask.order}-th task (name="{name}")')

    def _run_task(self, wftask: WorkflowTaskSpec, selected: list[Image]) -> TaskOutput:
        zarr_urls = [image["zarr_url"] for image in selected]
        if wftask.task_type == "non_parallel":
            return self._run_non_parallel(wftask, zarr_urls, TaskOutput)
        if wftask.task_type == "parallel":
            arguments = [{"zarr_url": url, **wftask.args_parallel} for url in zarr_urls]
            return self._run_parallel(wftask, arguments)
        init = self._run_non_parallel(wftask, zarr_urls, InitTaskOutput)
        items = deduplicate(init.parallelization_list)
        arguments = [
            {"zarr_url": item.zarr_url, "init_args": item.init_args, **wftask.args_parallel}
            for item in items
        ]
        return self._run_parallel(wftask, arguments)

    def _run_non_parallel(self, wftask: WorkflowTaskSpec, zarr_urls: list[str], model):
        arguments = {"zarr_urls": zarr_urls, "zarr_dir": self.state.zarr_dir, **wftask.args_non_parallel}
        call = self._prepare_call(
            wftask, str(wftask.order), wftask.task["command_non_parallel"], wftask.meta_non_parallel, arguments
        )
        self._check_outcomes(wftask, [call], self.phases.run(PhaseKey(wftask.order, 0), [call]))
        what = "init-task output" if model is InitTaskOutput else "task output"
        return read_output(call.out_file(self.working_dir), model, what)

    def _run_parallel(self, wftask: WorkflowTaskSpec, arguments: list[dict]) -> TaskOutput:
        if len(arguments) > MAX_PARALLELIZATION_ITEMS:
            raise JobExecutionError(
                "Too many parallelization items.\n"
                f"{len(arguments)}\n{MAX_PARALLELIZATION_ITEMS=}\n"
            )
        if not arguments:
            return TaskOutput()
        calls = [
            self._prepare_call(
                wftask, f"{wftask.order}_par_{index:07d}", wftask.task["command_parallel"], wftask.meta_parallel, args
            )
            for index, args in enumerate(arguments)
        ]
        step = 1 if wftask.task_type == "compound" else 0
        self._check_outcomes(wftask, calls, self.phases.run(PhaseKey(wftask.order, step), calls))
        return merge_outputs([read_output(call.out_file(self.working_dir), TaskOutput) for call in calls])

    def _prepare_call(self, wftask: WorkflowTaskSpec, prefix: str, command: str, meta: dict, arguments: dict) -> TaskCall:
        call = TaskCall(
            subfolder=wftask.subfolder, prefix=prefix, command=command, meta=meta or {}, task_name=wftask.task["name"]
        )
        _check_command(command, wftask)
        call.args_file(self.working_dir).write_text(json.dumps(arguments, indent=2))
        return call

    def _check_outcomes(self, wftask: WorkflowTaskSpec, calls: list[TaskCall], outcomes: list[CallOutcome]) -> None:
        """Raise for the first call (in order) that did not succeed."""
        for call, outcome in zip(calls, outcomes):
            if outcome.status is CallStatus.SUCCEEDED:
                continue
            if outcome.status is CallStatus.FAILED and (outcome.returncode is None or outcome.returncode > 0):
                if outcome.returncode is None:
                    text = outcome.detail or "Task could not start."
                else:
                    log_file = call.log_file(self.working_dir)
                    text = log_file.read_text(errors="replace") if log_file.exists() else ""
                raise TaskExecutionError(text, order=wftask.order, task_name=wftask.task["name"])
            raise JobExecutionError(info=_describe_end(call, outcome), sections=outcome.sections)

    def write_start_state(self) -> None:
        """The job's state before its first task: what a job adopted during that task starts from."""
        _write_json(self.working_dir / START_STATE_FILE, {"images": self.state.image_list(), "filters": self.state.filters})

    def write_snapshots(self) -> None:
        """The job's state after its last completed task: what a failed or adopted job starts from."""
        contents: dict[str, Any] = {
            "history.json": self.new_history,
            "filters.json": self.state.filters,
            "images.json": self.state.image_list(),
        }
        for name in SNAPSHOT_FILES:
            _write_json(self.working_dir / name, contents[name])


def _write_json(path: Path, content: Any) -> None:
    """Write atomically: a process that dies meanwhile leaves the old file or none."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(content, indent=2))
    temporary.replace(path)


_ENDS = {
    CallStatus.TIMED_OUT: "it was killed for exceeding its time limit",
    CallStatus.OUT_OF_MEMORY: "it was killed for exceeding its memory limit",
    CallStatus.CANCELLED: "it was cancelled",
    CallStatus.LOST: "it vanished without recording how it ended",
}


def _describe_end(call: TaskCall, outcome: CallOutcome) -> str:
    if outcome.status is CallStatus.FAILED:
        return f"Task failed with returncode={outcome.returncode}"
    text = f"Task call {call.prefix} did not complete: {_ENDS[outcome.status]}."
    return f"{text}\n{outcome.detail}" if outcome.detail else text


def _check_command(command: str, wftask: WorkflowTaskSpec) -> None:
    """No shell metacharacters, and a command line that splits."""
    found = sorted({char for char in command if char in FORBIDDEN_COMMAND_CHARS})
    try:
        if found:
            raise ValueError(f"Command must not contain any of this characters: {found}")
        if not shlex.split(command):
            raise ValueError("Empty command")
    except ValueError as error:
        raise TaskExecutionError(
            f"Invalid command. Original error: {error}", order=wftask.order, task_name=wftask.task["name"]
        ) from None
