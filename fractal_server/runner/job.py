"""Running one job from start to end (`runner-v2.md` sections 2 and 7)."""
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from flask import Flask

from fractal_server import __version__
from fractal_server.db import db, utc_now
from fractal_server.db.models import DatasetV2, JobV2, WorkflowV2
from fractal_server.images import store
from fractal_server.logging_setup import LOG_FORMAT
from fractal_server.runner.archive import archive_job_folder
from fractal_server.runner.backend import JobContext, JobRunner, RunnerBackend
from fractal_server.runner.dataset_state import DatasetState
from fractal_server.runner.errors import failed_order, failure_report
from fractal_server.runner.workflow import WorkflowRun, WorkflowTaskSpec

logger = logging.getLogger("fractal_server.runner")

WORKFLOW_LOG = "workflow.log"


@dataclass
class RunningJob:
    """A job being run by this process; the executor watches it."""

    job_id: int
    working_dir: Path
    runner: Optional[JobRunner] = None
    stop_requested: threading.Event = field(default_factory=threading.Event)


def run_job(app: Flask, backend: RunnerBackend, running: RunningJob) -> None:
    """Run the job and record how it ended; never raises."""
    with app.app_context():
        try:
            _run_job(app, backend, running)
        except Exception:
            logger.exception("Unexpected error while running job %s", running.job_id)
            db.session.rollback()
            job = db.session.get(JobV2, running.job_id)
            if job is not None and job.status == "submitted":
                _finish(job, "failed", "UNKNOWN ERROR: the server could not run the job; see its logs.")
        finally:
            db.session.remove()


def _run_job(app: Flask, backend: RunnerBackend, running: RunningJob) -> None:
    job = db.session.get(JobV2, running.job_id)
    if job is None:
        logger.warning("Job %s disappeared before it could start", running.job_id)
        return
    dataset = db.session.get(DatasetV2, job.dataset_id) if job.dataset_id else None
    workflow = db.session.get(WorkflowV2, job.workflow_id) if job.workflow_id else None
    problems = ""
    if dataset is None:
        problems += f"Cannot fetch dataset {job.dataset_id} from database\n"
    if workflow is None:
        problems += f"Cannot fetch workflow {job.workflow_id} from database\n"
    if problems:
        _finish(job, "failed", problems)
        return
    working_dir = Path(job.working_dir)
    if working_dir.exists():
        _finish(job, "failed", f"Workflow dir {working_dir} already exists.")
        return
    wftasks = [
        _spec(wftask) for wftask in workflow.task_list[job.first_task_index : job.last_task_index + 1]
    ]
    try:
        working_dir.mkdir(parents=True)
        for wftask in wftasks:
            (working_dir / wftask.subfolder).mkdir()
    except OSError as error:
        _finish(
            job,
            "failed",
            f"{type(error).__name__} error occurred while creating job folder and subfolders.\n"
            f"Original error: {error}",
        )
        return

    settings = app.extensions["fractal"].settings
    job_logger, handler = _job_logger(job, working_dir)
    initial_images = store.all_images(dataset.id)
    state = DatasetState(dataset.zarr_dir, [dict(image) for image in initial_images], dataset.filters)
    context = JobContext(
        job_id=job.id,
        working_dir=working_dir,
        working_dir_user=job.working_dir_user or str(working_dir),
        settings=settings,
        user_settings=None,
        slurm_account=job.slurm_account,
        worker_init=job.worker_init,
        logger_name=job_logger.name,
    )
    job_logger.info(f'Start execution of workflow "{workflow.name}"; more logs at {working_dir / WORKFLOW_LOG}')
    job_logger.info(f"fractal_server.__VERSION__: {__version__}")
    job_logger.info(f"FRACTAL_RUNNER_BACKEND: {backend.name}")
    job_logger.info(f"job.id: {job.id}")
    job_logger.info(f"job.working_dir: {working_dir}")
    job_logger.info(f"job.working_dir_user: {context.working_dir_user}")
    job_logger.info(f"job.first_task_index: {job.first_task_index}")
    job_logger.info(f"job.last_task_index: {job.last_task_index}")
    job_logger.info(f'START workflow "{workflow.name}"')
    db.session.commit()

    runner = backend.create_runner(context)
    running.runner = runner
    if running.stop_requested.is_set():
        runner.stop()
    run = WorkflowRun(working_dir=working_dir, runner=runner, state=state, logger=job_logger)
    try:
        run.run(wftasks)
    except Exception as error:
        job_logger.error(f"Job failed: {type(error).__name__}")
        failed = _failed_wftask(error, wftasks, len(run.new_history))
        history = run.new_history + ([failed.history_item("failed")] if failed else [])
        # Images and filters as after the last completed task (`images.json`);
        # untouched when no task completed.
        _save_dataset(dataset.id, state, history, write_state=bool(run.new_history))
        _finish(db.session.get(JobV2, running.job_id), "failed", failure_report(error, job.id))
    else:
        job_logger.info(f'End execution of workflow "{workflow.name}"')
        job_logger.info(f'END workflow "{workflow.name}"')
        _save_dataset(dataset.id, state, run.new_history)
        handler.flush()
        log = (working_dir / WORKFLOW_LOG).read_text(errors="replace")
        _finish(db.session.get(JobV2, running.job_id), "done", log)
    finally:
        runner.close()
        job_logger.removeHandler(handler)
        handler.close()
        archive_job_folder(working_dir)


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
    db.session.commit()


def _finish(job: JobV2, status: str, log: str) -> None:
    job.status = status
    job.log = log
    job.end_timestamp = utc_now()
    db.session.commit()
    logger.info("Job %s ended: %s", job.id, status)
