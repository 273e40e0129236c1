"""Task calls as subprocesses of the server, run by a pool of threads."""
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from fractal_server.runner.backend import CallOutcome, JobContext, JobRunner, TaskCall
from fractal_server_local_backend.config import load_local_config

STOPPED = "Job stopped: the task process was terminated."
# What the reference `local_experimental` backend (a process pool whose
# workers are killed on stop) reports for a stopped job (runner-v2.md section 9).
BROKEN_POOL = (
    "Job failed with BrokenProcessPool error, likely due to an executor shutdown.\n"
    "Original error:\n"
    "A process in the process pool was terminated abruptly while the future was running or pending."
)


class LocalRunner(JobRunner):
    """Runs calls in chunks of `parallel_tasks_per_job`, one chunk after the other.

    The chunk size comes from the workflow task's meta, else from
    `FRACTAL_LOCAL_CONFIG_FILE`, else all calls run at once (bounded by the
    thread pool). Each call runs in its own process group, so `stop` can
    kill a task together with its children.
    """

    stopped_message = STOPPED

    def __init__(self, context: JobContext):
        self.context = context
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def run(self, calls: Sequence[TaskCall]) -> list[CallOutcome]:
        if not calls:
            return []
        config = load_local_config(self.context.settings.FRACTAL_LOCAL_CONFIG_FILE)
        chunk_size = (
            calls[0].meta.get("parallel_tasks_per_job")
            or config.parallel_tasks_per_job
            or len(calls)
        )
        outcomes: list[CallOutcome] = []
        with ThreadPoolExecutor() as pool:
            for start in range(0, len(calls), chunk_size):
                outcomes.extend(pool.map(self._run_one, calls[start : start + chunk_size]))
        return outcomes

    def _run_one(self, call: TaskCall) -> CallOutcome:
        if self._stopped.is_set():
            return CallOutcome(returncode=None, error=self.stopped_message, stopped=True)
        root = self.context.working_dir
        argv = shlex.split(call.command) + [
            "--args-json",
            str(call.args_file(root)),
            "--out-json",
            str(call.out_file(root)),
        ]
        with open(call.log_file(root), "wb") as log:
            try:
                process = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            except OSError as error:
                return CallOutcome(
                    returncode=None,
                    error=f'Command "{argv[0]}" is not valid. Hint: make sure that it is '
                    f"executable.\nOriginal error: {error}",
                )
            with self._lock:
                self._running.add(process)
                if self._stopped.is_set():
                    _kill_group(process)
            try:
                returncode = process.wait()
            finally:
                with self._lock:
                    self._running.discard(process)
        if self._stopped.is_set():
            return CallOutcome(returncode, self.stopped_message, stopped=True)
        return CallOutcome(returncode)

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            for process in self._running:
                _kill_group(process)


def _kill_group(process: subprocess.Popen) -> None:
    """Kill a task process and everything it started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class LocalExperimentalRunner(LocalRunner):
    """`local_experimental`: as `local`, but stoppable, with the reference's stop report."""

    stopped_message = BROKEN_POOL
