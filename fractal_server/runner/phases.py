"""Running one phase of a task through the backend, so that another process can take it over.

A phase is the single call of a non-parallel task, the parallel calls of a
task, or one of the two steps of a compound task. Before a phase is
submitted, and again once the backend has accepted it, the job's row
records which phase it is and the backend's handle (`JobV2.runner_state`):
a server process that adopts the job replays the workflow loop from the
last snapshot, and when the loop reaches the recorded phase it polls the
stored handle instead of submitting the calls again.
"""
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import update

from fractal_server.db import db
from fractal_server.db.models import JobV2
from fractal_server.runner.backend import CallOutcome, CallStatus, JobRunner, RunnerBackend, TaskCall
from fractal_server.runner.control import JobControl
from fractal_server.runner.errors import JobExecutionError


FIRST_POLL_DELAY = 0.02
"""Seconds before the second poll of a phase; the delay doubles up to the runner's `poll_interval`."""


class Detached(Exception):
    """This process let go of the job (it is shutting down); another one adopts it."""


@dataclass(frozen=True)
class PhaseKey:
    order: int
    """Workflow position of the task."""
    step: int
    """0: the task's only phase, or the init phase of a compound task; 1: its compute phase."""


class PhaseRunner:
    def __init__(
        self,
        job_id: int,
        backend: RunnerBackend,
        runner: JobRunner,
        control: JobControl,
        recorded: Optional[dict],
        logger: logging.Logger,
    ):
        self.job_id = job_id
        self.backend = backend
        self.runner = runner
        self.control = control
        self.logger = logger
        self._recorded_key = PhaseKey(*recorded["phase"]) if recorded and recorded.get("phase") else None
        self._recorded_handle = recorded.get("handle") if recorded else None

    def run(self, key: PhaseKey, calls: Sequence[TaskCall]) -> list[CallOutcome]:
        recorded = self._recorded_key
        if recorded is not None and recorded.order == key.order and recorded.step > key.step:
            # An earlier phase of the task being adopted: it succeeded before.
            return [CallOutcome(CallStatus.SUCCEEDED, 0)] * len(calls)
        if recorded == key:
            self._recorded_key = None
            handle = self._adopt(key, calls)
        else:
            self._check_control(calls, None)
            self._record(key, None)
            handle = self.runner.submit(calls)
            self._record(key, handle)
        return self._wait(calls, handle)

    def _adopt(self, key: PhaseKey, calls: Sequence[TaskCall]) -> dict:
        handle = self._recorded_handle
        if handle is None:
            raise JobExecutionError(
                info="The server process that ran this job stopped while it was submitting the calls "
                f"of the task at position {key.order}; they were not submitted again, so that no work "
                "runs twice. Check the task's outputs before you submit the job again."
            )
        if not self.backend.can_adopt:
            self.runner.cancel(calls, handle)
            raise JobExecutionError(
                info="The server process that ran this job stopped, and the runner backend "
                f"'{self.backend.name}' cannot follow calls that another process started: "
                "they were cancelled."
            )
        self.logger.info(f"Adopted the running calls of the task at position {key.order}")
        return handle

    def _wait(self, calls: Sequence[TaskCall], handle: dict) -> list[CallOutcome]:
        """Poll until the calls end: soon at first (short tasks end early), then every `poll_interval`."""
        delay = FIRST_POLL_DELAY
        while True:
            self._check_control(calls, handle)
            outcomes = self.runner.poll(calls, handle)
            if outcomes is not None:
                return outcomes
            self.control.wait(min(delay, self.runner.poll_interval))
            delay *= 2

    def _check_control(self, calls: Sequence[TaskCall], handle: Optional[dict]) -> None:
        if self.control.stop_requested.is_set():
            if handle is not None:
                self.runner.cancel(calls, handle)
            raise JobExecutionError(info=self.runner.stopped_message)
        if self.control.detach_requested.is_set():
            raise Detached()

    def _record(self, key: PhaseKey, handle: Optional[dict]) -> None:
        record_runner_state(self.job_id, {"phase": [key.order, key.step], "handle": handle})


def record_runner_state(job_id: int, state: dict) -> None:
    db.session.execute(update(JobV2).where(JobV2.id == job_id).values(runner_state=state))
    db.session.commit()
