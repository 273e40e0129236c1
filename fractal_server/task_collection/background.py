"""Background work on task groups: threads of the server process, and recovery after a crash.

The endpoints store a `pending` activity that names the process running it
(`process_id`) and start the procedure in a thread of that process (as
jobs run in threads of their executor). If the process dies, the thread
dies with it: `fail_orphaned_activities` (called by the job executor at
start-up and periodically) fails the activities of dead processes, says why
in their log, and cleans up what a failed procedure would have cleaned up.
"""
import logging
import threading
from collections.abc import Callable

from flask import current_app
from sqlalchemy import select, update

from fractal_server.task_group_rules import delete_task_group
from fractal_server.db import db, utc_now
from fractal_server.db.models import TaskGroupActivityV2, TaskGroupV2, User
from fractal_server.process_identity import is_dead, this_process_id
from fractal_server.task_collection.activity_log import ActivityRecorder
from fractal_server.task_collection.hosts import TaskHost, TaskHostError, task_host_for

logger = logging.getLogger("fractal_server.task_collection")


def start_in_background(procedure: Callable[[int], None], activity_id: int) -> threading.Thread:
    """Run `procedure(activity_id)` in a thread of this process, in an app context.

    An unexpected exception fails the activity (with the error in its log).
    """
    app = current_app._get_current_object()

    def target() -> None:
        with app.app_context():
            try:
                procedure(activity_id)
            except Exception as error:
                logger.exception("Task-group activity %s: unexpected error", activity_id)
                try:
                    activity = db.session.get(TaskGroupActivityV2, activity_id)
                    if activity is not None and activity.status in ("pending", "ongoing"):
                        ActivityRecorder(activity).fail(f"Unexpected error: {error!r}")
                except Exception:
                    logger.exception("Task-group activity %s: cannot record the failure", activity_id)
            finally:
                db.session.remove()

    thread = threading.Thread(target=target, name=f"fractal-task-group-activity-{activity_id}", daemon=True)
    thread.start()
    return thread


def remove_folder(host: TaskHost, path: str, log: ActivityRecorder) -> None:
    """Remove a folder of the task host and its content; problems are logged, not raised."""
    try:
        if host.exists(path):
            host.remove_folder(path)
            log.info(f"Removed {path}")
    except TaskHostError as error:
        log.warning(f"Cannot remove {path}: {error}")


def _clean_up_after(action: str, task_group: TaskGroupV2, log: ActivityRecorder) -> None:
    """What the interrupted procedure would have removed on failure."""
    try:
        host = task_host_for(db.session.get(User, task_group.user_id))
        if action == "collect" and task_group.path:
            remove_folder(host, task_group.path, log)
        elif action == "reactivate" and task_group.venv_path and is_venv(host, task_group.venv_path):
            remove_folder(host, task_group.venv_path, log)
    except TaskHostError as error:
        log.warning(f"Cannot clean up: {error}")


def is_venv(host: TaskHost, path: str) -> bool:
    return host.exists(f"{path}/pyvenv.cfg")


def fail_orphaned_activities() -> None:
    """Fail the pending/ongoing activities whose server process is no longer running."""
    me = this_process_id()
    candidates = db.session.scalars(
        select(TaskGroupActivityV2)
        .where(
            TaskGroupActivityV2.status.in_(("pending", "ongoing")),
            TaskGroupActivityV2.process_id.is_not(None),
            TaskGroupActivityV2.process_id != me,
        )
        .order_by(TaskGroupActivityV2.id)
    ).all()
    for activity in candidates:
        if not is_dead(activity.process_id):
            continue
        try:
            _fail_orphaned(activity)
        except Exception:
            logger.exception("Cannot fail the orphaned task-group activity %s", activity.id)
            db.session.rollback()


def _fail_orphaned(activity: TaskGroupActivityV2) -> None:
    was = activity.status
    # Compare-and-set: of several processes recovering at once, one does the clean-up.
    claimed = db.session.execute(
        update(TaskGroupActivityV2)
        .where(TaskGroupActivityV2.id == activity.id, TaskGroupActivityV2.status == was)
        .values(status="failed", timestamp_ended=utc_now())
    ).rowcount
    db.session.commit()
    if claimed != 1:
        return
    db.session.refresh(activity)
    log = ActivityRecorder(activity)
    log.error(
        f"The {activity.action} failed: the server process that ran it ({activity.process_id}) "
        f"is no longer running (the activity was '{was}'); it was probably killed or crashed."
    )
    logger.warning(
        "Task-group activity %s (%s) failed: its server process %s is gone",
        activity.id, activity.action, activity.process_id,
    )
    task_group = db.session.get(TaskGroupV2, activity.taskgroupv2_id) if activity.taskgroupv2_id else None
    if task_group is not None and was == "ongoing":
        _clean_up_after(activity.action, task_group, log)
    if task_group is not None and activity.action == "collect":
        delete_task_group(task_group)
        log.info(f"Deleted task group {task_group.id}.")
    elif task_group is not None:
        log.info(f"Task group {task_group.id} left with active={task_group.active}.")
    log.save()
