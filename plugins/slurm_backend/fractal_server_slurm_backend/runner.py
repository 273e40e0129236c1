"""Task calls as SLURM jobs of the user's own account.

A phase becomes SLURM jobs: the single call of a non-parallel phase is one
job; parallel calls are batched (`batching.py`), one job per batch. Each job
runs the call wrapper on a phase file of its batch. Everything a job reads
or writes is in the user-side job folder (with `slurm`,
`<project_dir>/.fractal_cache/<job folder>`; with `slurm_ssh`,
`<ssh_jobs_dir>/<job folder>` on the remote host), private to the user: the
server writes the scripts, phase files and arguments files in its own job
folder (private to the service account) and sends them there as the user,
and when a phase's SLURM jobs have ended it copies the calls' logs, outputs
and status files, and SLURM's own output and error files, back. Each
direction is one `tar` stream per phase. How commands reach the user's
account (sudo, SSH) is the `ClusterAccess` given to the runner.

The handle names the user's access (`ClusterAccess.handle_fields`) and, for
each SLURM job, its id, its SLURM prefix and its calls: any server process
can poll or cancel it.
"""

import json
import logging
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Optional

from fractal_server.runner.backend import CallOutcome, Handle, JobContext, JobRunner, TaskCall
from fractal_server.runner.calls import WRAPPER_SCRIPT, phase_spec
from fractal_server.runner.errors import JobExecutionError
from fractal_server_slurm_backend.access import ClusterAccess, ClusterError
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
from fractal_server_slurm_backend.squeue import SlurmJobStates, has_ended
from fractal_server_slurm_backend.sudo import CACHE_FOLDER, SudoAccess
from fractal_server_slurm_backend.transfer import fetch_files, send_files

STOPPED = "Job cancelled due to executor shutdown."
WRAPPER_NAME = "call_wrapper.py"
MINIMUM_PYTHON = (3, 9)
"""The oldest Python that runs the call wrapper."""


def user_side_dir(user_settings, folder_name: str) -> str:
    """Where the calls of a `slurm` job write: `<project_dir>/.fractal_cache/<job folder>`."""
    return str(PurePosixPath(user_settings.project_dir) / CACHE_FOLDER / folder_name)


class SlurmRunner(JobRunner):
    stopped_message = STOPPED

    def __init__(self, context: JobContext, access_class: type[ClusterAccess] = SudoAccess):
        self.context = context
        self.access_class = access_class
        self.settings = context.settings
        self.poll_interval = self.settings.FRACTAL_SLURM_POLL_INTERVAL
        self.logger = logging.getLogger(context.logger_name)
        self.user_root = PurePosixPath(context.working_dir_user)
        self._checked_python = False
        self._watched: dict[str, SlurmJobStates] = {}
        """SLURM job id -> the poller that watches it."""
        self._missing_since: dict[str, float] = {}
        """First SLURM job id of a phase -> when its ended jobs were first seen without all status files."""
        self._fetch_failing_since: dict[str, float] = {}
        """First SLURM job id of a phase -> since when its files could not be copied back (or squeue failed)."""

    # --- submit -------------------------------------------------------------

    def submit(self, calls: Sequence[TaskCall]) -> Handle:
        access = self.access_class.for_job(self.context)
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
        pre_submission = options.pre_submission_commands
        if pre_submission and not access.runs_pre_submission_commands:
            self.logger.warning(f"pre_submission_commands are ignored for {access.description}")
            pre_submission = []
        subfolder = calls[0].subfolder
        batches = self._batches(calls, options, parallel)
        for prefix, _, batch, running in batches:
            self._write_job_files(options, prefix, batch, running, access.exports_base)
        self._send_phase(access, calls, [prefix for prefix, *_ in batches])
        jobs: list[dict] = []
        try:
            for index, (prefix, first, batch, _) in enumerate(batches):
                if index:
                    time.sleep(self.settings.FRACTAL_SLURM_SBATCH_SLEEP)
                script = self.user_root / subfolder / script_name(prefix)
                job_id = self._sbatch(access, script, pre_submission)
                jobs.append({"id": job_id, "prefix": prefix, "first": first, "count": len(batch)})
        except BaseException:
            self._scancel(access, [job["id"] for job in jobs])
            raise
        self.logger.info(
            f"Submitted {len(calls)} call(s) of {subfolder} as SLURM job(s) "
            f"{', '.join(job['id'] for job in jobs)} of {access.description}"
        )
        return {**access.handle_fields(), "jobs": jobs}

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

    def _send_phase(self, access: ClusterAccess, calls: Sequence[TaskCall], prefixes: list[str]) -> None:
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
            self._check_python(access)
            access.run(["mkdir", "-p", "-m", "700", str(self.user_root), str(self.user_root / subfolder)])
            sent = send_files(access, root, names, self.user_root)
        except ClusterError as error:
            raise JobExecutionError(info=f"Cannot prepare the user-side job folder.\n{error}") from None
        self.logger.debug(f"Sent {len(names)} files of {subfolder} to {access.description} ({sent} bytes)")

    def _check_python(self, access: ClusterAccess) -> None:
        """Once per job: FRACTAL_SLURM_WORKER_PYTHON (or the server's) runs, as the user, and is recent enough."""
        if self._checked_python:
            return
        python = self._worker_python()
        result = access.run(
            [python, "-S", "-c", f"import sys; sys.exit(sys.version_info < {MINIMUM_PYTHON!r})"], check=False
        )
        if result.returncode != 0:
            raise JobExecutionError(
                info=f"The Python that runs the call wrapper, {python} (FRACTAL_SLURM_WORKER_PYTHON), does "
                f"not run as {access.description}, or is older than {'.'.join(map(str, MINIMUM_PYTHON))} "
                f"(exit status {result.returncode}): {result.stderr.decode(errors='replace').strip()}"
            )
        self._checked_python = True

    def _worker_python(self) -> str:
        return self.settings.FRACTAL_SLURM_WORKER_PYTHON or sys.executable

    def _write_job_files(
        self, options: SlurmJobOptions, prefix: str, batch: list[TaskCall], running: int, exports_base: str
    ) -> None:
        """The phase file and the submission script of one SLURM job, written server side."""
        folder = self.context.working_dir / batch[0].subfolder
        user_folder = self.user_root / batch[0].subfolder
        phase_name = phase_file_name(prefix)
        spec = phase_spec(batch, self.user_root, parallel=running, lane_launcher=step_launcher(options, running))
        (folder / phase_name).write_text(json.dumps(spec))
        python = self._worker_python()
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

    def _sbatch(self, access: ClusterAccess, script: PurePosixPath, pre_submission: list[str]) -> str:
        """`sbatch` the script; with `pre_submission` commands, in one `bash` after them (each must succeed)."""
        argv = ["sbatch", "--parsable", str(script)]
        if pre_submission:
            argv = ["bash", "-c", "\n".join(["set -e", *pre_submission, shlex.join(argv)])]
        try:
            result = access.run(argv, check=False)
        except ClusterError as error:
            raise JobExecutionError(info=f"Cannot submit {script}.\n{error}") from None
        stdout = result.stdout.decode(errors="replace").strip()
        if result.returncode != 0:
            raise JobExecutionError(
                info=f"Submit command {' '.join(argv)!r} failed.\nstdout: {stdout}\n"
                f"stderr: {result.stderr.decode(errors='replace').strip()}"
            )
        job_id = stdout.splitlines()[-1].split(";", 1)[0] if stdout else ""
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
        access = self.access_class.from_handle(self.context, handle)
        poller = access.job_states(self.poll_interval, self.settings.FRACTAL_SLURM_OUTAGE_LIMIT)
        self._watched.update(dict.fromkeys(ids, poller))
        states = poller.states(ids)
        if not all(has_ended(state) for state in states.values()):
            return None
        try:
            self._fetch(access, calls, handle)
        except ClusterError as error:
            return self._fetch_failed(access, ids, poller, error)
        self._fetch_failing_since.pop(ids[0], None)
        root = self.context.working_dir
        found, missing = [], False
        for job in jobs:
            job_id, state = job["id"], states[job["id"]]
            sections = self._sections(calls[job["first"]].subfolder, job)
            for call in calls[job["first"] : job["first"] + job["count"]]:
                outcome = call_outcome(call, root, job_id=job_id, job_state=state, sections=sections)
                found.append(outcome or lost(job_id, state, sections, poller.last_error))
                missing = missing or outcome is None
        if missing and not self._waited_for_missing_files(ids[0]):
            return None
        self._release(ids)
        return found

    def _waited_for_missing_files(self, key: str) -> bool:
        """Whether FRACTAL_SLURM_ERROR_HANDLING_INTERVAL has passed since files were first found missing."""
        since = self._missing_since.setdefault(key, time.monotonic())
        return time.monotonic() - since >= self.settings.FRACTAL_SLURM_ERROR_HANDLING_INTERVAL

    def _fetch_failed(
        self, access: ClusterAccess, ids: list[str], poller: SlurmJobStates, error: ClusterError
    ) -> None:
        """A failed copy is tried again at the next poll (a dropped connection, a short outage).

        When copies and `squeue` have failed for longer than the outage limit,
        the job fails saying so: its calls may still be running, and nothing
        here tells how they ended.
        """
        now = time.monotonic()
        since = self._fetch_failing_since.setdefault(ids[0], poller.failing_since or now)
        limit = self.settings.FRACTAL_SLURM_OUTAGE_LIMIT
        if now - since < limit:
            self.logger.warning(f"Could not copy the files of SLURM job(s) {', '.join(ids)} back; will try again: {error}")
            return None
        self._release(ids)
        raise JobExecutionError(
            info=f"Cannot follow SLURM job(s) {', '.join(ids)} of {access.description}: {error}\n"
            f"For more than FRACTAL_SLURM_OUTAGE_LIMIT={limit} s, neither their state nor their files "
            "could be read; they may still be running there."
        )

    def _fetch(self, access: ClusterAccess, calls: Sequence[TaskCall], handle: Handle) -> None:
        """Copy the phase's files back into the server-side folder, as the user."""
        names = []
        for call in calls:
            names += [path.name for path in (call.log_file(Path()), call.out_file(Path()), call.status_file(Path()))]
        for job in handle["jobs"]:
            names += slurm_log_names(job["prefix"], job["id"])
        subfolder = calls[0].subfolder
        fetch_files(access, self.user_root / subfolder, names, self.context.working_dir / subfolder)

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
        self._scancel(self.access_class.from_handle(self.context, handle), ids)
        self._release(ids)

    def _scancel(self, access: ClusterAccess, ids: list[str]) -> None:
        if not ids:
            return
        try:
            access.run(["scancel", *ids])
        except ClusterError as error:
            self.logger.error(f"Could not cancel SLURM jobs {', '.join(ids)}: {error}")

    def _release(self, ids: list[str]) -> None:
        """Forget a phase's SLURM jobs: no longer watched, no time kept for them."""
        for job_id in ids:
            poller = self._watched.pop(job_id, None)
            if poller is not None:
                poller.forget([job_id])
            self._missing_since.pop(job_id, None)
            self._fetch_failing_since.pop(job_id, None)

    def close(self) -> None:
        self._release(list(self._watched))


def _is_parallel(calls: Sequence[TaskCall]) -> bool:
    """The parallel calls of a task are named `<order>_par_<index>` (runner-v2.md 4.2)."""
    return len(calls) > 1 or "_par_" in calls[0].prefix


def phase_file_name(slurm_prefix: str) -> str:
    return f"{slurm_prefix}.phase.json"
