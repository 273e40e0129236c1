"""Running one job from start to end (`runner-v2.md` sections 2 and 7), or from where another process left it."""
import json
import logging
from pathlib import Path
from typing import Optional

from flask import Flask
from sqlalchemy import select

from fractal_server import __version__
from fractal_server.db import db, utc_now
from fractal_server.db.models import DatasetV2, JobV2, User, WorkflowV2
from fractal_server.images import store
from fractal_server.logging_setup import LOG_FORMAT
from fractal_server.runner.archive import archive_job_folder
from fractal_server.runner.backend import JobContext, RunnerBackend
from fractal_server.runner.control import JobControl
from fractal_server.runner.dataset_state import DatasetState
from fractal_server.runner.errors import failed_order, failure_report
from fractal_server.runner.phases import Detached, PhaseRunner, record_runner_state
from fractal_server.runner.workflow import SNAPSHOT_FILES, START_STATE_FILE, WorkflowRun, WorkflowTaskSpec
from fractal_server.schemas.users import UserSettingsRead

logger = logging.getLogger("fractal_server.runner")

WORKFLOW_LOG = "workflow.log"


def run_job(app: Flask, backend: RunnerBackend, control: JobControl) -> bool:
    """Run the job and record how it ended; never raises.

    Returns True when this process let go of the job (see `JobControl.request_detach`).
    """
    with app.app_context():
        try:
            return _run_job(app, backend, control)
        except Exception:
            logger.exception("Unexpected error while running job %s", control.job_id)
            db.session.rollback()
            job = db.session.get(JobV2, control.job_id)
            if job is not None and job.status == "submitted":
                _finish(job, "failed", "UNKNOWN ERROR: the server could not run the job; see its logs.")
            return False
        finally:
            db.session.remove()


def _run_job(app: Flask, backend: RunnerBackend, control: JobControl) -> bool:
    job = db.session.get(JobV2, control.job_id)
    if job is None:
        logger.warning("Job %s disappeared before it could start", control.job_id)
        return False
    dataset = db.session.get(DatasetV2, job.dataset_id) if job.dataset_id else None
    workflow = db.session.get(WorkflowV2, job.workflow_id) if job.workflow_id else None
    problems = ""
    if dataset is None:
        problems += f"Cannot fetch dataset {job.dataset_id} from database\n"
    if workflow is None:
        problems += f"Cannot fetch workflow {job.workflow_id} from database\n"
    if problems:
        _finish(job, "failed", problems)
        return False
    working_dir = Path(job.working_dir)
    adopted = job.runner_state
    if adopted is None:
        if working_dir.exists():
            _finish(job, "failed", f"Workflow dir {working_dir} already exists.")
            return False
        record_runner_state(job.id, {"phase": None, "handle": None})
    wftasks = [
        _spec(wftask) for wftask in workflow.task_list[job.first_task_index : job.last_task_index + 1]
    ]
    try:
        # Private to the server's account: backends that run calls as other
        # users send them what they need.
        working_dir.mkdir(mode=0o700, parents=True, exist_ok=adopted is not None)
        for wftask in wftasks:
            (working_dir / wftask.subfolder).mkdir(mode=0o700, exist_ok=adopted is not None)
    except OSError as error:
        _finish(
            job,
            "failed",
            f"{type(error).__name__} error occurred while creating job folder and subfolders.\n"
            f"Original error: {error}",
        )
        return False

    job_logger, handler = _job_logger(job, working_dir)
    context = JobContext(
        job_id=job.id,
        working_dir=working_dir,
        working_dir_user=job.working_dir_user or str(working_dir),
        settings=app.extensions["fractal"].settings,
        user_settings=_user_settings(job.user_email),
        slurm_account=job.slurm_account,
        worker_init=job.worker_init,
        logger_name=job_logger.name,
    )
    images, filters, history = _saved_state(working_dir)
    fresh = images is None
    if fresh:
        images, filters = [dict(image) for image in store.all_images(dataset.id)], dataset.filters
    state = DatasetState(dataset.zarr_dir, images, filters)
    if adopted is None:
        _log_start(job_logger, job, workflow.name, backend, context)
    else:
        job_logger.info(
            f"Job adopted by server process {job.executor_id}, after {len(history)} completed task(s)"
        )
    db.session.commit()

    runner = backend.create_runner(context)
    phases = PhaseRunner(job.id, backend, runner, control, adopted, job_logger)
    run = WorkflowRun(working_dir=working_dir, phases=phases, state=state, logger=job_logger, new_history=history)
    if fresh:
        run.write_start_state()
    detached = False
    try:
        run.run(wftasks)
    except Detached:
        detached = True
        job_logger.info("The server process is shutting down: the job's calls keep running, for the next one to adopt")
    except Exception as error:
        job_logger.error(f"Job failed: {type(error).__name__}")
        failed = _failed_wftask(error, wftasks, len(run.new_history))
        new_history = run.new_history + ([failed.history_item("failed")] if failed else [])
        # Images and filters as after the last completed task (`images.json`);
        # untouched when no task completed.
        _save_dataset(dataset.id, state, new_history, write_state=bool(run.new_history))
        _finish(db.session.get(JobV2, control.job_id), "failed", failure_report(error, job.id))
    else:
        job_logger.info(f'End execution of workflow "{workflow.name}"')
        job_logger.info(f'END workflow "{workflow.name}"')
        _save_dataset(dataset.id, state, run.new_history)
        handler.flush()
        log = (working_dir / WORKFLOW_LOG).read_text(errors="replace")
        _finish(db.session.get(JobV2, control.job_id), "done", log)
    finally:
        runner.close()
        job_logger.removeHandler(handler)
        handler.close()
    if not detached:
        (working_dir / START_STATE_FILE).unlink(missing_ok=True)
        archive_job_folder(working_dir)
    return detached


def _log_start(job_logger: logging.Logger, job: JobV2, workflow_name: str, backend: RunnerBackend, context: JobContext) -> None:
    working_dir = context.working_dir
    job_logger.info(f'Start execution of workflow "{workflow_name}"; more logs at {working_dir / WORKFLOW_LOG}')
    job_logger.info(f"fractal_server.__VERSION__: {__version__}")
    job_logger.info(f"FRACTAL_RUNNER_BACKEND: {backend.name}")
    job_logger.info(f"job.id: {job.id}")
    job_logger.info(f"job.working_dir: {working_dir}")
    job_logger.info(f"job.working_dir_user: {context.working_dir_user}")
    job_logger.info(f"job.first_task_index: {job.first_task_index}")
    job_logger.info(f"job.last_task_index: {job.last_task_index}")
    job_logger.info(f'START workflow "{workflow_name}"')


def _user_settings(email: str) -> Optional[UserSettingsRead]:
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None or user.settings is None:
        return None
    return UserSettingsRead.model_validate(user.settings, from_attributes=True)


def _saved_state(working_dir: Path) -> tuple[Optional[list], Optional[dict], list[dict]]:
    """Images, filters and new history items saved by the job: after its last
    completed task, else as it started; `(None, None, [])` before it saved any."""
    try:
        history, filters, images = (json.loads((working_dir / name).read_text()) for name in SNAPSHOT_FILES)
        return images, filters, history
    except FileNotFoundError:
        pass
    try:
        start = json.loads((working_dir / START_STATE_FILE).read_text())
    except FileNotFoundError:
        return None, None, []
    return start["images"], start["filters"], []


def _spec(wftask) -> WorkflowTaskSpec:
    task = wftask.task
    return WorkflowTaskSpec(
        id=wftask.id,
        workflow_id=wftask.workflow_id,
        order=wftask.order,
        task_type=wftask.task_type,
        input_filters=wftask.input_filters or {"attributes": {}, "types": {}},
        args_non_parallel=wftask.args_non_parallel or {},
        args_parallel=wftask.args_parallel or {},
        meta_non_parallel=wftask.meta_non_parallel or {},
        meta_parallel=wftask.meta_parallel or {},
        task={
            "id": task.id,
            "name": task.name,
            "type": task.type,
            "command_non_parallel": task.command_non_parallel,
            "command_parallel": task.command_parallel,
            "source": task.source,
            "version": task.version,
            "input_types": task.input_types or {},
            "output_types": task.output_types or {},
        },
    )


def _failed_wftask(error: Exception, wftasks: list[WorkflowTaskSpec], completed: int) -> Optional[WorkflowTaskSpec]:
    order = failed_order(error)
    if order is not None:
        return next((wftask for wftask in wftasks if wftask.order == order), None)
    return wftasks[completed] if completed < len(wftasks) else None


def _job_logger(job: JobV2, working_dir: Path) -> tuple[logging.Logger, logging.Handler]:
    job_logger = logging.getLogger(f"WF{job.workflow_id}_job{job.id}")
    job_logger.setLevel(logging.DEBUG)
    job_logger.propagate = False
    handler = logging.FileHandler(working_dir / WORKFLOW_LOG)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    job_logger.addHandler(handler)
    return job_logger, handler


def _save_dataset(dataset_id: int, state: DatasetState, history: list[dict], write_state: bool = True) -> None:
    """Write the job's results: its images and filters replace the stored ones
    (edits made through the API while the job ran are overwritten, as in the
    reference), the new history items are appended.

    The image list is rewritten with row operations only, from the list as it
    is stored now (not as the job read it), so that the result is exactly the
    job's list.
    """
    dataset = db.session.get(DatasetV2, dataset_id)
    if dataset is None:
        return
    if write_state:
        store.apply_changes(dataset_id, store.all_images(dataset_id), state.image_list())
        dataset.filters = state.filters
    dataset.history = list(dataset.history or []) + history


def _finish(job: JobV2, status: str, log: str) -> None:
    """End the job; the dataset changes made before are committed with it, in one transaction."""
    job.status = status
    job.log = log
    job.end_timestamp = utc_now()
    job.runner_state = None
    db.session.commit()
    logger.info("Job %s ended: %s", job.id, status)
