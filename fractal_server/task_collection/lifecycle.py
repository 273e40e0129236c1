"""Deactivation and reactivation of task groups (`api-v2.md` 9, `task-collection.md` 8-9).

The endpoints run their guards (see `api.v2.task_group_rules`), then call
`request_deactivation` / `request_reactivation`:

* a task group of origin `other` has no environment on disk: it is switched
  at once and the activity is stored directly as `OK`;
* for a collected task group a `pending` activity is stored and
  `start_deactivation` / `start_reactivation` start the background work.

NOT IMPLEMENTED YET: the background work on collected task groups (removing
or rebuilding the virtual environment). Until the task-collection work
replaces the two `start_*` hooks, they mark the activity `failed` with a log
that says so, and leave the environment and `active` as they were before the
request, so that users see the refusal and keep a working task group.
"""
import logging
from typing import Optional

from fractal_server.api.v2.job_submission import check_user_settings
from fractal_server.db import db, utc_now
from fractal_server.db.models import TaskGroupActivityV2, TaskGroupV2, User
from fractal_server.http.errors import ApiError
from fractal_server.server_state import server_state

logger = logging.getLogger("fractal_server.task_collection")

DEACTIVATION_NOT_AVAILABLE = "Deactivation of collected task groups is not available yet"
REACTIVATION_NOT_AVAILABLE = "Reactivation of collected task groups is not available yet"


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
    activity = _store_activity(task_group, "deactivate", "pending")
    start_deactivation(activity.id)
    return db.session.get(TaskGroupActivityV2, activity.id)


def request_reactivation(task_group: TaskGroupV2) -> TaskGroupActivityV2:
    """Reactivate (origin `other`) or start reactivating; returns the activity."""
    if task_group.origin == "other":
        task_group.active = True
        return _shortcut(task_group, "reactivate", "set task_group.active to True and exit.")
    if task_group.pip_freeze is None:
        raise ApiError(422, "Cannot reactivate a task group with task_group.pip_freeze=None.")
    check_owner_settings(task_group)
    activity = _store_activity(task_group, "reactivate", "pending")
    start_reactivation(activity.id)
    return db.session.get(TaskGroupActivityV2, activity.id)


def check_owner_settings(task_group: TaskGroupV2) -> None:
    """With `slurm_ssh`, the owner's settings must fit the backend (422).

    Checked before anything is changed (the reference checks afterwards and
    leaves the changes in place on failure: a quirk we do not reproduce).
    """
    backend = server_state().backend
    if backend.name == "slurm_ssh":
        check_user_settings(db.session.get(User, task_group.user_id), backend)


def _shortcut(task_group: TaskGroupV2, action: str, what: str) -> TaskGroupActivityV2:
    now = utc_now()
    log = f"Task group has task_group.origin='other', {what}"
    return _store_activity(task_group, action, "OK", log=log, started=now, ended=now)


def _store_activity(
    task_group: TaskGroupV2,
    action: str,
    status: str,
    *,
    log: Optional[str] = None,
    started=None,
    ended=None,
) -> TaskGroupActivityV2:
    """A new activity of the task group's owner; commits every pending change."""
    activity = TaskGroupActivityV2(
        user_id=task_group.user_id,
        taskgroupv2_id=task_group.id,
        pkg_name=task_group.pkg_name,
        version=task_group.version or "N/A",
        action=action,
        status=status,
        log=log,
        timestamp_started=started or utc_now(),
        timestamp_ended=ended,
    )
    db.session.add(activity)
    db.session.commit()
    return activity


# --- Hook points for the background work (to be replaced by task collection) ---


def start_deactivation(activity_id: int) -> None:
    """Start removing the environment of the activity's task group.

    Not available yet: the activity fails at once and the task group stays
    active (its environment is untouched).
    """
    activity = db.session.get(TaskGroupActivityV2, activity_id)
    task_group = db.session.get(TaskGroupV2, activity.taskgroupv2_id)
    task_group.active = True
    _fail(activity, DEACTIVATION_NOT_AVAILABLE, "The task group was left active and unchanged.")


def start_reactivation(activity_id: int) -> None:
    """Start rebuilding the environment of the activity's task group.

    Not available yet: the activity fails at once and the task group stays
    inactive.
    """
    activity = db.session.get(TaskGroupActivityV2, activity_id)
    _fail(activity, REACTIVATION_NOT_AVAILABLE, "The task group was left inactive and unchanged.")


def _fail(activity: TaskGroupActivityV2, reason: str, outcome: str) -> None:
    logger.warning("Task-group activity %s (%s) failed: %s", activity.id, activity.action, reason)
    activity.status = "failed"
    activity.log = f"{reason}\n{outcome}"
    activity.timestamp_ended = utc_now()
    db.session.commit()
