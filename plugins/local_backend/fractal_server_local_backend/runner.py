"""Task calls as processes of this host, detached from the server.

Each phase runs in one process of its own, the call wrapper, started in a
new session: it outlives the server process, and a restarted server polls
it through its process identity and the calls' status files. Stopping a
phase asks the wrapper to end its calls (each in a session of its own,
killed with everything it started).
"""
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Optional

from fractal_server.process_identity import is_dead, is_on_this_host, process_id
from fractal_server.runner.backend import CallOutcome, CallStatus, Handle, JobContext, JobRunner, TaskCall
from fractal_server.runner.call_wrapper import KILL_AFTER
from fractal_server.runner.calls import WRAPPER_SCRIPT, phase_spec, read_outcome
from fractal_server.runner.errors import JobExecutionError
from fractal_server_local_backend.config import load_local_config

STOPPED = "Job stopped: the task process was terminated."
# What the reference `local_experimental` backend (a process pool whose
# workers are killed on stop) reports for a stopped job (runner-v2.md section 9).
BROKEN_POOL = (
    "Job failed with BrokenProcessPool error, likely due to an executor shutdown.\n"
    "Original error:\n"
    "A process in the process pool was terminated abruptly while the future was running or pending."
)
CANCEL_WAIT = 5.0
"""Seconds a cancelled wrapper gets, after it killed its calls, to record their end and exit."""
MAX_CONCURRENT_CALLS = min(32, (os.cpu_count() or 1) + 4)
"""At most this many calls of a chunk run at once (the reference's thread pool size)."""
LOST = (
    "The process that ran this task call ended without recording how the call ended "
    "(it was killed, or the machine restarted)."
)


class LocalRunner(JobRunner):
    """Runs the calls of a phase in chunks of `parallel_tasks_per_job`, one chunk after the other.

    The chunk size comes from the workflow task's meta, else from
    `FRACTAL_LOCAL_CONFIG_FILE`, else the phase is one chunk; within a
    chunk at most `MAX_CONCURRENT_CALLS` calls run at once.
    """

    poll_interval = 0.5
    stopped_message = STOPPED

    def __init__(self, context: JobContext):
        self.context = context
        self._wrappers: dict[int, subprocess.Popen] = {}

    def submit(self, calls: Sequence[TaskCall]) -> Handle:
        config = load_local_config(self.context.settings.FRACTAL_LOCAL_CONFIG_FILE)
        chunk_size = calls[0].meta.get("parallel_tasks_per_job") or config.parallel_tasks_per_job
        root = self.context.working_dir
        folder = root / calls[0].subfolder
        phase_file = folder / f"{calls[0].prefix}.phase.json"
        spec = phase_spec(calls, root, parallel=MAX_CONCURRENT_CALLS, chunk_size=chunk_size)
        phase_file.write_text(json.dumps(spec))
        with open(folder / f"{calls[0].prefix}.phase.out", "ab") as output:
            wrapper = subprocess.Popen(
                [sys.executable, "-S", str(WRAPPER_SCRIPT), str(phase_file)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wrappers[wrapper.pid] = wrapper
        # Not reaped yet, so the pid is still the wrapper's even if it has ended.
        return {"wrapper": process_id(wrapper.pid)}

    def poll(self, calls: Sequence[TaskCall], handle: Handle) -> Optional[list[CallOutcome]]:
        if self._wrapper_running(handle["wrapper"]):
            return None
        root = self.context.working_dir
        return [read_outcome(call, root) or CallOutcome(CallStatus.LOST, detail=LOST) for call in calls]

    def cancel(self, calls: Sequence[TaskCall], handle: Handle) -> None:
        """Ask the wrapper to end its calls (SIGTERM, then SIGKILL); kill it if it does not end."""
        identity = handle["wrapper"]
        pid = int(identity.rsplit(":", 2)[1])
        if self._wrapper_running(identity):
            _signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + KILL_AFTER + CANCEL_WAIT
            while self._wrapper_running(identity) and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._wrapper_running(identity):
                _signal(pid, signal.SIGKILL)
        wrapper = self._wrappers.pop(pid, None)
        if wrapper is not None:
            wrapper.wait()

    def _wrapper_running(self, identity: str) -> bool:
        if not is_on_this_host(identity):
            raise JobExecutionError(
                info=f"The task calls of this job run on host {identity.rsplit(':', 2)[0]}; "
                "a server process of another host cannot follow them."
            )
        pid = int(identity.rsplit(":", 2)[1])
        wrapper = self._wrappers.get(pid)
        if wrapper is not None and wrapper.poll() is not None:
            del self._wrappers[pid]  # reaped
        return not is_dead(identity)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


class LocalExperimentalRunner(LocalRunner):
    """`local_experimental`: as `local`, but stoppable, with the reference's stop report."""

    stopped_message = BROKEN_POOL
