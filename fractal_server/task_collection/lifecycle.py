"""Deactivation and reactivation of task groups (`api-v2.md` 9, `task-collection.md` 8-9).

The endpoints run their guards (see `fractal_server.task_group_rules`), then call
`request_deactivation` / `request_reactivation`:

* a task group of origin `other` has no environment on disk: it is switched
  at once and the activity is stored directly as `OK`;
* for a collected task group a `pending` activity is stored and the
  background procedure starts in a thread (`deactivate` / `reactivate`).

Deactivation removes the virtual environment and keeps what rebuilds it:
`pip_freeze` (taken now if the group has none) and, for wheel-file groups,
the wheel inside the group's `path`. Reactivation rebuilds the environment
from `pip_freeze`.
"""
import logging
from pathlib import PurePosixPath
from typing import Optional

from fractal_server.runner.user_settings import check_user_settings
from fractal_server.db import db, utc_now
from fractal_server.db.models import TaskGroupActivityV2, TaskGroupV2, User
from fractal_server.http.errors import ApiError
from fractal_server.server_state import current_settings, server_state
from fractal_server.task_collection.activity_log import ActivityRecorder
from fractal_server.task_collection.background import is_venv, remove_folder, start_in_background
from fractal_server.task_collection.hosts import TaskHost, TaskHostError, task_host_for
from fractal_server.task_collection.pip_collection import tasks_python
from fractal_server.task_collection.records import pending_activity
from fractal_server.task_collection.venv import StepFailed, Venv, run_command

logger = logging.getLogger("fractal_server.task_collection")

FREEZE_FILE_NAME = "_tmp_pip_freeze.txt"
"""Written into the task group's `path` for the reinstallation, then removed."""


def request_deactivation(task_group: TaskGroupV2, *, set_inactive_now: bool) -> TaskGroupActivityV2:
    """Deactivate (origin `other`) or start deactivating; returns the activity.

    `set_inactive_now`: the user endpoint marks the group inactive before the
    background work starts, the admin endpoint leaves that to the work.
    """
    if task_group.origin == "other":
        task_group.active = False
        return _shortcut(task_group, "deactivate", "set task_group.active to False and exit.")
    check_owner_settings(task_group)
    if set_inactive_now:
        task_group.active = False
    activity = _store_pending(task_group, "deactivate")
    start_in_background(deactivate, activity.id)
    return activity  # (as stored: loaded before the work started)


def request_reactivation(task_group: TaskGroupV2) -> TaskGroupActivityV2:
    """Reactivate (origin `other`) or start reactivating; returns the activity."""
    if task_group.origin == "other":
        task_group.active = True
        return _shortcut(task_group, "reactivate", "set task_group.active to True and exit.")
    if task_group.pip_freeze is None:
        raise ApiError(422, "Cannot reactivate a task group with task_group.pip_freeze=None.")
    check_owner_settings(task_group)
    activity = _store_pending(task_group, "reactivate")
    start_in_background(reactivate, activity.id)
    return activity  # (as stored: loaded before the work started)


def check_owner_settings(task_group: TaskGroupV2) -> None:
    """The owner's settings must fit the backend that builds the environments (422).

    Checked before anything is changed (the reference checks afterwards and
    leaves the changes in place on failure: a quirk we do not reproduce).
    """
    backend = server_state().backend
    if backend.task_host is not None:
        check_user_settings(db.session.get(User, task_group.user_id), backend)


def _shortcut(task_group: TaskGroupV2, action: str, what: str) -> TaskGroupActivityV2:
    return _store_finished(task_group, action, "OK", f"Task group has task_group.origin='other', {what}")


def _store_finished(task_group: TaskGroupV2, action: str, status: str, log: str) -> TaskGroupActivityV2:
    now = utc_now()
    activity = TaskGroupActivityV2(
        user_id=task_group.user_id,
        taskgroupv2_id=task_group.id,
        pkg_name=task_group.pkg_name,
        version=task_group.version or "N/A",
        action=action,
        status=status,
        log=log,
        timestamp_started=now,
        timestamp_ended=now,
    )
    db.session.add(activity)
    db.session.commit()
    return activity


def _store_pending(task_group: TaskGroupV2, action: str) -> TaskGroupActivityV2:
    """A new pending activity; commits every pending change.

    The row is loaded again at once, so that the answer shows it `pending`
    whatever the background work does meanwhile.
    """
    activity = pending_activity(task_group, action)
    db.session.add(activity)
    db.session.commit()
    db.session.refresh(activity)
    return activity


def _load(activity_id: int) -> tuple[Optional[TaskGroupActivityV2], Optional[TaskGroupV2]]:
    activity = db.session.get(TaskGroupActivityV2, activity_id)
    if activity is None or activity.taskgroupv2_id is None:
        return activity, None
    return activity, db.session.get(TaskGroupV2, activity.taskgroupv2_id)


# --- Background procedures ---


def deactivate(activity_id: int) -> None:
    """Remove the environment; keep pip freeze and (wheel-file) the wheel inside `path`."""
    activity, task_group = _load(activity_id)
    if activity is None or task_group is None:
        return
    log = ActivityRecorder(activity)
    log.debug(f"START deactivation of task group {task_group.id} ({task_group.pkg_name} {task_group.version})")
    venv_path = task_group.venv_path
    try:
        host = task_host_for(db.session.get(User, task_group.user_id))
        venv_exists = venv_path is not None and host.exists(venv_path)
    except TaskHostError as error:
        log.fail(str(error))
        return
    if not venv_exists:
        log.fail(f"{venv_path} does not exist.")
        return
    log.set_ongoing()
    try:
        if not is_venv(host, venv_path):
            raise StepFailed(f"{venv_path} is not a virtual environment (it has no pyvenv.cfg): not removing it.")
        venv = Venv(host, PurePosixPath(venv_path), log, "deactivate-task-group")
        if task_group.pip_freeze is None:
            log.warning("The task group has no pip freeze (it predates 2.9.0): taking it from the environment now.")
            task_group.pip_freeze = venv.freeze()
            db.session.commit()
            log.info("Stored pip freeze in the task group")
        if task_group.origin == "wheel-file":
            _keep_wheel_inside_path(host, task_group, log)
        task_group.active = False
        db.session.commit()
        log.info(f"Set task_group.active to False; removing {venv_path}")
        host.remove_folder(venv_path)
        log.info(f"Removed {venv_path}")
    except Exception as error:
        if not isinstance(error, (StepFailed, TaskHostError)):
            logger.exception("Deactivation of task group %s failed", task_group.id)
        log.fail(str(error) or repr(error))
        return
    log.succeed()


def _keep_wheel_inside_path(host: TaskHost, task_group: TaskGroupV2, log: ActivityRecorder) -> None:
    """The wheel must survive the venv: copy it into `path` if it is elsewhere (older groups)."""
    if task_group.wheel_path is None or not host.exists(task_group.wheel_path):
        raise StepFailed(f"The wheel file of the task group ({task_group.wheel_path}) does not exist.")
    wheel = PurePosixPath(task_group.wheel_path)
    if wheel.parent == PurePosixPath(task_group.path):
        return
    if task_group.wheel_path not in task_group.pip_freeze:
        raise StepFailed(f"The wheel {wheel} is not in the pip freeze of the task group.")
    copy = str(PurePosixPath(task_group.path) / wheel.name)
    run_command(host, ["cp", "--", str(wheel), copy], log, "copy the wheel", "deactivate-task-group")
    task_group.pip_freeze = task_group.pip_freeze.replace(task_group.wheel_path, copy)
    task_group.wheel_path = copy
    db.session.commit()
    log.info(f"Copied {wheel} to {copy}")


def reactivate(activity_id: int) -> None:
    """Rebuild the environment from the stored pip freeze."""
    activity, task_group = _load(activity_id)
    if activity is None or task_group is None:
        return
    log = ActivityRecorder(activity)
    log.debug(f"START reactivation of task group {task_group.id} ({task_group.pkg_name} {task_group.version})")
    venv_path = task_group.venv_path
    try:
        host = task_host_for(db.session.get(User, task_group.user_id))
        venv_exists = host.exists(venv_path)
    except TaskHostError as error:
        log.fail(str(error))
        return
    if venv_exists:
        log.fail(f"{venv_path} already exists.")
        return
    log.set_ongoing()
    settings = current_settings()
    python_version = task_group.python_version or settings.FRACTAL_TASKS_PYTHON_DEFAULT_VERSION
    requirements = str(PurePosixPath(task_group.path) / FREEZE_FILE_NAME)
    created = False
    try:
        interpreter = tasks_python(settings, python_version)
        if interpreter is None:
            raise StepFailed(f"Python version {python_version} is not available for Fractal task collection.")
        venv = Venv(host, PurePosixPath(venv_path), log, "reactivate-task-group")
        host.make_dirs(task_group.path)
        host.write_text(requirements, task_group.pip_freeze)
        created = True
        venv.create(interpreter)
        venv.prepare_pip(settings.FRACTAL_MAX_PIP_VERSION)
        venv.install_requirements_file(requirements)
        host.run(["rm", "-f", "--", requirements])
        task_group.active = True
        db.session.commit()
        log.info("Set task_group.active to True")
    except Exception as error:
        if not isinstance(error, (StepFailed, TaskHostError)):
            logger.exception("Reactivation of task group %s failed", task_group.id)
        db.session.rollback()
        if created:
            remove_folder(host, venv_path, log)
        log.fail(str(error) or repr(error))
        return
    log.succeed()
