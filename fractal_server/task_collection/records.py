"""Rows that collections create: tasks from their creation bodies, pending activities."""
from fractal_server.db import utc_now
from fractal_server.db.models import TaskGroupActivityV2, TaskGroupV2, TaskV2
from fractal_server.process_identity import this_process_id
from fractal_server.schemas.tasks import TaskCreate


def task_row(task: TaskCreate) -> TaskV2:
    fields = task.model_dump()
    fields["meta_parallel"] = fields["meta_parallel"] or {}
    fields["meta_non_parallel"] = fields["meta_non_parallel"] or {}
    return TaskV2(type=task.task_type, **fields)


def pending_activity(task_group: TaskGroupV2, action: str) -> TaskGroupActivityV2:
    """A `pending` activity of the group's owner, run by this server process (not yet added)."""
    return TaskGroupActivityV2(
        user_id=task_group.user_id,
        taskgroupv2_id=task_group.id,
        pkg_name=task_group.pkg_name,
        version=task_group.version or "N/A",
        action=action,
        status="pending",
        timestamp_started=utc_now(),
        process_id=this_process_id(),
    )
