"""Pip collection, the background part (`task-collection.md` 3).

In a thread of the server process, on the task host (this machine, or
the one the backend says): create `<path>/venv` with the
interpreter of the requested Python version, install the package (from
the index or from the copy of the wheel kept in `<path>`), with its extras
and pinned versions, keep `pip freeze`, read and validate the manifest and
create the tasks. Every step is recorded in the activity.

A failure leaves only the failed activity and its log: the folder `path`
(if this procedure created it) is removed and the task group deleted.
"""
import logging
from pathlib import Path, PurePosixPath
from typing import Optional

from fractal_server.task_group_rules import delete_task_group
from fractal_server.config.settings import Settings, tasks_python_key
from fractal_server.db import db
from fractal_server.db.models import TaskGroupActivityV2, TaskGroupV2, User
from fractal_server.server_state import current_settings
from fractal_server.task_collection.activity_log import ActivityRecorder
from fractal_server.task_collection.background import remove_folder
from fractal_server.task_collection.hosts import TaskHost, TaskHostError, task_host_for
from fractal_server.task_collection.manifest import (
    ManifestError,
    check_task_scripts_exist,
    read_manifest,
    tasks_from_manifest,
)
from fractal_server.task_collection.packages import install_requirement, normalize_package_name
from fractal_server.task_collection.records import task_row
from fractal_server.task_collection.venv import StepFailed, Venv

logger = logging.getLogger("fractal_server.task_collection")

PROGRESS_LABEL = "collect-task"


def tasks_python(settings: Settings, python_version: str) -> Optional[str]:
    """The interpreter configured for `python_version` (`FRACTAL_TASKS_PYTHON_X_Y`), if any."""
    return getattr(settings, tasks_python_key(python_version), None)


def collect_pip(activity_id: int) -> None:
    """The background procedure of `POST /api/v2/task/collect/pip/`."""
    activity = db.session.get(TaskGroupActivityV2, activity_id)
    if activity is None or activity.taskgroupv2_id is None:
        return
    task_group = db.session.get(TaskGroupV2, activity.taskgroupv2_id)
    if task_group is None:
        return
    task_group_id = task_group.id
    log = ActivityRecorder(activity)
    path = task_group.path
    log.debug(
        f"START collection of {task_group.pkg_name} {task_group.version} "
        f"(task group {task_group_id}, origin {task_group.origin}) into {path}"
    )
    try:
        host = task_host_for(db.session.get(User, task_group.user_id))
        path_exists = host.exists(path)
    except TaskHostError as error:
        _abort(log, task_group_id, str(error))
        return
    if path_exists:
        _abort(log, task_group_id, f"{path} already exists.")
        return
    log.set_ongoing()
    created = False
    try:
        host.make_dirs(path)
        created = True
        log.debug(f"Created {path}")
        _install_and_create_tasks(current_settings(), host, task_group_id, log)
    except (StepFailed, ManifestError, TaskHostError) as error:
        _abort(log, task_group_id, str(error), host if created else None)
        return
    except Exception as error:
        logger.exception("Collection of task group %s failed", task_group_id)
        _abort(log, task_group_id, f"Unexpected error: {error!r}", host if created else None)
        return
    log.succeed()


def _install_and_create_tasks(settings: Settings, host: TaskHost, task_group_id: int, log: ActivityRecorder) -> None:
    task_group = db.session.get(TaskGroupV2, task_group_id)
    path = PurePosixPath(task_group.path)
    if task_group.origin == "wheel-file":
        source = Path(task_group.wheel_path)
        copy = str(path / source.name)
        host.put_file(source, copy)
        task_group.wheel_path = copy
        log.debug(f"Copied {source} to {copy}")
        log.save()
        requirement = install_requirement(copy, task_group.pip_extras, None)
    else:
        requirement = install_requirement(task_group.pkg_name, task_group.pip_extras, task_group.version)

    interpreter = tasks_python(settings, task_group.python_version)
    if interpreter is None:
        raise StepFailed(f"Python version {task_group.python_version} is not available for Fractal task collection.")
    venv = Venv(host, PurePosixPath(task_group.venv_path), log, PROGRESS_LABEL)
    venv.create(interpreter)
    venv.prepare_pip(settings.FRACTAL_MAX_PIP_VERSION)
    venv.install(requirement)
    venv.pin(task_group.pinned_package_versions or {})
    pip_freeze = venv.freeze()
    installed = venv.show(task_group.pkg_name)
    if normalize_package_name(installed.name) != normalize_package_name(task_group.pkg_name):
        raise StepFailed(
            "Package name mismatch persists, after normalization: "
            f"pip reports '{installed.name}', the task group has '{task_group.pkg_name}'."
        )
    size_kb, file_number = venv.size()

    package_root = PurePosixPath(installed.location) / task_group.pkg_name.replace("-", "_")
    log.debug(f"Package root: {package_root}")
    log.info(f"Reading and validating the manifest {installed.manifest_path}")
    manifest = read_manifest(host, str(installed.manifest_path))
    log.info(f"The manifest is valid: {len(manifest.task_list)} tasks")
    tasks = tasks_from_manifest(
        manifest, python_bin=str(venv.python), package_root=str(package_root), version=task_group.version
    )
    check_task_scripts_exist(host, tasks)
    task_group.task_list = [task_row(task) for task in tasks]
    task_group.pip_freeze = pip_freeze
    task_group.venv_size_in_kB = size_kb
    task_group.venv_file_number = file_number
    db.session.commit()
    log.info(f"Created {len(tasks)} tasks: {', '.join(task.name for task in tasks)}")
    log.info("Stored pip freeze, environment size and number of files in the task group")


def _abort(log: ActivityRecorder, task_group_id: int, reason: str, created_on: Optional[TaskHost] = None) -> None:
    """Leave nothing but the failed activity: remove the folder if this procedure
    created it (on `created_on`), delete the task group."""
    db.session.rollback()
    log.error(reason)
    task_group = db.session.get(TaskGroupV2, task_group_id)
    if created_on is not None and task_group is not None:
        remove_folder(created_on, task_group.path, log)
    if task_group is not None:
        delete_task_group(task_group)
        log.info(f"Deleted task group {task_group_id}.")
    log.fail("Task collection failed.")
