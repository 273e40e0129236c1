"""Job submission: the preconditions of the contract, in order, then the job row."""
from pathlib import Path

from sqlalchemy import update

from fractal_server.api.v2.access import get_dataset, get_workflow
from fractal_server.api.v2.task_access import get_task_read
from fractal_server.db import db, utc_now
from fractal_server.db.models import JobV2, TaskGroupV2, User
from fractal_server.db.models.jobs import submitted_job_ids
from fractal_server.http.errors import ApiError
from fractal_server.http.timestamps import format_timestamp
from fractal_server.runner.user_settings import check_user_settings
from fractal_server.schemas.jobs import JobCreate
from fractal_server.server_state import server_state


def submit_job(user: User, project_id: int, workflow_id: int, dataset_id: int, body: JobCreate) -> JobV2:
    dataset = get_dataset(user, project_id, dataset_id)
    workflow = get_workflow(user, project_id, workflow_id)
    num_tasks = len(workflow.task_list)
    if num_tasks == 0:
        raise ApiError(422, f"Workflow {workflow_id} has empty task list")
    first, last = _task_range(body, num_tasks)
    task_group_ids = set()
    for wftask in workflow.task_list[first : last + 1]:
        task = get_task_read(user, wftask.task_id, require_active=True)
        task_group_ids.add(task.taskgroupv2_id)
    state = server_state()
    check_user_settings(user, state.backend)
    if submitted_job_ids(JobV2.dataset_id == dataset_id):
        raise ApiError(422, f"Dataset {dataset_id} is already in use in submitted job(s).")
    accounts = user.settings.slurm_accounts if user.settings else []
    if body.slurm_account is not None and body.slurm_account not in accounts:
        raise ApiError(422, f"SLURM account '{body.slurm_account}' is not among those available to the current user")
    slurm_account = body.slurm_account or (accounts[0] if accounts else None)

    job = JobV2(
        project_id=project_id,
        workflow_id=workflow_id,
        dataset_id=dataset_id,
        user_email=user.email,
        slurm_account=slurm_account,
        worker_init=body.worker_init,
        first_task_index=first,
        last_task_index=last,
        start_timestamp=utc_now(),
        status="submitted",
        project_dump=_dump(dataset.project, ("id", "name", "timestamp_created")),
        workflow_dump=_dump(workflow, ("id", "name", "project_id", "timestamp_created")),
        dataset_dump=_dump(dataset, ("id", "name", "project_id", "timestamp_created", "zarr_dir", "filters")),
    )
    db.session.add(job)
    db.session.flush()
    db.session.execute(
        update(TaskGroupV2).where(TaskGroupV2.id.in_(task_group_ids)).values(timestamp_last_used=job.start_timestamp)
    )
    folder_name = (
        f"proj_v2_{project_id:07d}_wf_{workflow_id:07d}_job_{job.id:07d}_"
        f"{job.start_timestamp.strftime('%Y%m%d_%H%M%S')}"
    )
    working_dir = Path(state.settings.FRACTAL_RUNNER_WORKING_BASE_DIR) / folder_name
    job.working_dir = str(working_dir)
    user_side = state.backend.user_side_dir
    job.working_dir_user = user_side(user.settings, folder_name) if user_side else str(working_dir)
    db.session.commit()
    if state.executor is not None:
        state.executor.notify()
    return job


def _task_range(body: JobCreate, num_tasks: int) -> tuple[int, int]:
    first = 0 if body.first_task_index is None else body.first_task_index
    last = num_tasks - 1 if body.last_task_index is None else body.last_task_index
    reason = None
    if last > num_tasks - 1:
        reason = f"last_task_index={last} cannot be larger than (num_tasks-1)={num_tasks - 1}"
    elif first > last:
        reason = f"first_task_index={first} cannot be larger than last_task_index={last}"
    if reason:
        raise ApiError(
            422,
            f"Invalid values for first_task_index or last_task_index (with num_tasks={num_tasks}).\n"
            f"Original error: {reason}",
        )
    return first, last


def _dump(row, fields: tuple[str, ...]) -> dict:
    dump = {}
    for name in fields:
        value = getattr(row, name)
        dump[name] = format_timestamp(value) if name == "timestamp_created" else value
    return dump
