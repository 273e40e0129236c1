"""Task calls as SLURM jobs of the user's own account, submitted through sudo.

A phase becomes SLURM jobs: the single call of a non-parallel phase is one
job; parallel calls are batched (`batching.py`), one job per batch. Each job
runs the call wrapper on a phase file of its batch. Everything a job reads
or writes is in the user-side job folder (`<project_dir>/.fractal_cache/<job
folder>`, private to the user): the server writes the scripts, phase files
and arguments files in its own job folder (private to the service account)
and sends them there as the user, and when a phase's SLURM jobs have ended
it copies the calls' logs, outputs and status files, and SLURM's own output
and error files, back. Each direction is one `tar` stream per phase.

The handle names the SLURM user and, for each SLURM job, its id, its SLURM
prefix and its calls: any server process can poll or cancel it.
"""

import json
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Optional

from fractal_server.runner.backend import CallOutcome, Handle, JobContext, JobRunner, TaskCall
from fractal_server.runner.calls import WRAPPER_SCRIPT, phase_spec
from fractal_server.runner.errors import JobExecutionError
from fractal_server_slurm_backend.batching import batch_sizes, split_into_batches
from fractal_server_slurm_backend.config import load_slurm_config
from fractal_server_slurm_backend.options import SlurmJobOptions, slurm_job_options
from fractal_server_slurm_backend.outcomes import call_outcome, file_section, lost
from fractal_server_slurm_backend.script import (
    batch_prefix,
    script_name,
    slurm_log_names,
    step_launcher,
    submission_script,
)
from fractal_server_slurm_backend.squeue import has_ended, shared_job_states
from fractal_server_slurm_backend.sudo import SudoError, run_as
from fractal_server_slurm_backend.transfer import fetch_files, send_files

STOPPED = "Job cancelled due to executor shutdown."
WRAPPER_NAME = "call_wrapper.py"
CACHE_FOLDER = ".fractal_cache"


def user_side_dir(user_settings, folder_name: str) -> str:
    """Where the calls of a job write: `<project_dir>/.fractal_cache/<job folder>`."""
    return str(PurePosixPath(user_settings.project_dir) / CACHE_FOLDER / folder_name)


class SlurmRunner(JobRunner):
    stopped_message = STOPPED

    def __init__(self, context: JobContext):
        self.context = context
        self.settings = context.settings
        self.poll_interval = self.settings.FRACTAL_SLURM_POLL_INTERVAL
        self.logger = logging.getLogger(context.logger_name)
        self.user_root = PurePosixPath(context.working_dir_user)
        self.states = shared_job_states(self.poll_interval)
        self._watched: set[str] = set()
        self._missing_since: dict[str, float] = {}
        """First SLURM job id of a phase -> when its ended jobs were first seen without all status files."""

    # --- submit -------------------------------------------------------------

    def submit(self, calls: Sequence[TaskCall]) -> Handle:
        user_settings = self.context.user_settings
        if user_settings is None or not user_settings.slurm_user:
            raise JobExecutionError(info="The job's user has no slurm_user: its calls cannot be submitted.")
        user = user_settings.slurm_user
        config = load_slurm_config(self.settings.FRACTAL_SLURM_CONFIG_FILE)
        parallel = _is_parallel(calls)
        options = slurm_job_options(
            config,
            calls[0].meta,
            task_name=calls[0].task_name or calls[0].subfolder,
            parallel=parallel,
            slurm_account=self.context.slurm_account,
            worker_init=self.context.worker_init,
        )
        if options.pre_submission_commands:
            self.logger.warning("pre_submission_commands are ignored by the slurm backend")
        subfolder = calls[0].subfolder
        exports_base = str(PurePosixPath(user_settings.project_dir) / CACHE_FOLDER)
        batches = self._batches(calls, options, parallel)
        for prefix, _, batch, running in batches:
            self._write_job_files(options, prefix, batch, running, exports_base)
        self._send_phase(user, calls, [prefix for prefix, *_ in batches])
        jobs: list[dict] = []
        try:
            for index, (prefix, first, batch, _) in enumerate(batches):
                if index:
                    time.sleep(self.settings.FRACTAL_SLURM_SBATCH_SLEEP)
                script = self.user_root / subfolder / script_name(prefix)
                jobs.append({"id": self._sbatch(user, script), "prefix": prefix, "first": first, "count": len(batch)})
        except BaseException:
            self._scancel(user, [job["id"] for job in jobs])
            raise
        self.logger.info(
            f"Submitted {len(calls)} call(s) of {subfolder} as SLURM job(s) "
            f"{', '.join(job['id'] for job in jobs)} of user {user}"
        )
        return {"slurm_user": user, "jobs": jobs}

    def _batches(self, calls: Sequence[TaskCall], options: SlurmJobOptions, parallel: bool):
        """(SLURM prefix, index of the first call, calls, calls at a time) of each SLURM job."""
        if not parallel:
            return [(calls[0].prefix, 0, list(calls), 1)]
        tasks_per_job, at_once = batch_sizes(
            len(calls),
            options.cpus_per_task,
            options.mem_per_call_mb,
            options.tasks_per_job,
            options.parallel_tasks_per_job,
            options.batching,
            logger=self.logger,
        )
        order = int(calls[0].subfolder.split("_", 1)[0])
        return [
            (batch_prefix(order, index), index * tasks_per_job, batch, min(at_once, len(batch)))
            for index, batch in enumerate(split_into_batches(calls, tasks_per_job))
        ]

    def _send_phase(self, user: str, calls: Sequence[TaskCall], prefixes: list[str]) -> None:
        """The user-side folders, made by (and private to) the user; the phase's inputs sent there."""
        root = self.context.working_dir
        subfolder = calls[0].subfolder
        wrapper = root / WRAPPER_NAME
        if not wrapper.exists():
            shutil.copyfile(WRAPPER_SCRIPT, wrapper)
        names = [WRAPPER_NAME] + [str(call.args_file(PurePosixPath())) for call in calls]
        for prefix in prefixes:
            names += [f"{subfolder}/{script_name(prefix)}", f"{subfolder}/{phase_file_name(prefix)}"]
        try:
            run_as(user, ["mkdir", "-p", "-m", "700", str(self.user_root), str(self.user_root / subfolder)])
            send_files(user, root, names, self.user_root)
        except SudoError as error:
            raise JobExecutionError(info=f"Cannot prepare the user-side job folder.\n{error}") from None

    def _write_job_files(
        self, options: SlurmJobOptions, prefix: str, batch: list[TaskCall], running: int, exports_base: str
    ) -> None:
        """The phase file and the submission script of one SLURM job, written server side."""
        folder = self.context.working_dir / batch[0].subfolder
        user_folder = self.user_root / batch[0].subfolder
        phase_name = phase_file_name(prefix)
        spec = phase_spec(batch, self.user_root, parallel=running, launcher=step_launcher(options))
        (folder / phase_name).write_text(json.dumps(spec))
        python = self.settings.FRACTAL_SLURM_WORKER_PYTHON or sys.executable
        text = submission_script(
            options,
            [python, "-S", str(self.user_root / WRAPPER_NAME), str(user_folder / phase_name)],
            n_calls=len(batch),
            running=running,
            user_job_dir=str(self.user_root),
            user_subfolder=str(self.user_root / batch[0].subfolder),
            slurm_prefix=prefix,
            exports_base=exports_base,
            logger=self.logger,
        )
        (folder / script_name(prefix)).write_text(text)

    def _sbatch(self, user: str, script: PurePosixPath) -> str:
        argv = ["sbatch", "--parsable", str(script)]
        result = run_as(user, argv, check=False)
        stdout = result.stdout.decode(errors="replace").strip()
        if result.returncode != 0:
            raise JobExecutionError(
                info=f"Submit command {' '.join(argv)!r} failed.\nstdout: {stdout}\n"
                f"stderr: {result.stderr.decode(errors='replace').strip()}"
            )
        job_id = stdout.split(";", 1)[0]
        if not job_id.isdigit():
            raise JobExecutionError(
                info=f"Submit command {' '.join(argv)!r} returned {stdout!r}, "
                "which cannot be cast to an integer SLURM-job ID."
            )
        return job_id

    # --- poll -------------------------------------------------------------

    def poll(self, calls: Sequence[TaskCall], handle: Handle) -> Optional[list[CallOutcome]]:
        jobs = handle["jobs"]
        ids = [job["id"] for job in jobs]
        self._watched.update(ids)
        states = self.states.states(ids)
        if not all(has_ended(state) for state in states.values()):
            return None
        self._fetch(calls, handle)
        root = self.context.working_dir
        found, missing = [], False
        for job in jobs:
            job_id, state = job["id"], states[job["id"]]
            sections = self._sections(calls[job["first"]].subfolder, job)
            for call in calls[job["first"] : job["first"] + job["count"]]:
                outcome = call_outcome(call, root, job_id=job_id, job_state=state, sections=sections)
                found.append(outcome or lost(job_id, state, sections, self.states.last_error))
                missing = missing or outcome is None
        if missing and not self._waited_for_missing_files(ids[0]):
            return None
        self._missing_since.pop(ids[0], None)
        self._release(ids)
        return found

    def _waited_for_missing_files(self, key: str) -> bool:
        """Whether FRACTAL_SLURM_ERROR_HANDLING_INTERVAL has passed since files were first found missing."""
        since = self._missing_since.setdefault(key, time.monotonic())
        return time.monotonic() - since >= self.settings.FRACTAL_SLURM_ERROR_HANDLING_INTERVAL

    def _fetch(self, calls: Sequence[TaskCall], handle: Handle) -> None:
        """Copy the phase's files back into the server-side folder, as the SLURM user."""
        names = []
        for call in calls:
            names += [path.name for path in (call.log_file(Path()), call.out_file(Path()), call.status_file(Path()))]
        for job in handle["jobs"]:
            names += slurm_log_names(job["prefix"], job["id"])
        subfolder = calls[0].subfolder
        try:
            fetch_files(handle["slurm_user"], self.user_root / subfolder, names, self.context.working_dir / subfolder)
        except SudoError as error:
            self.logger.warning(f"Could not copy the files of {subfolder} back: {error}")

    def _sections(self, subfolder: str, job: dict) -> tuple[tuple[str, str], ...]:
        folder = self.context.working_dir / subfolder
        out_name, err_name = slurm_log_names(job["prefix"], job["id"])
        return (
            file_section("COMMAND", folder / script_name(job["prefix"])),
            file_section("STDOUT", folder / out_name),
            file_section("STDERR", folder / err_name),
        )

    # --- cancel, close ----------------------------------------------------

    def cancel(self, calls: Sequence[TaskCall], handle: Handle) -> None:
        ids = [job["id"] for job in handle["jobs"]]
        self._scancel(handle["slurm_user"], ids)
        self._release(ids)

    def _scancel(self, user: str, ids: list[str]) -> None:
        if not ids:
            return
        try:
            run_as(user, ["scancel", *ids])
        except SudoError as error:
            self.logger.error(f"Could not cancel SLURM jobs {', '.join(ids)}: {error}")

    def _release(self, ids: list[str]) -> None:
        self.states.forget(ids)
        self._watched.difference_update(ids)

    def close(self) -> None:
        self._release(list(self._watched))


def _is_parallel(calls: Sequence[TaskCall]) -> bool:
    """The parallel calls of a task are named `<order>_par_<index>` (runner-v2.md 4.2)."""
    return len(calls) > 1 or "_par_" in calls[0].prefix


def phase_file_name(slurm_prefix: str) -> str:
    return f"{slurm_prefix}.phase.json"
