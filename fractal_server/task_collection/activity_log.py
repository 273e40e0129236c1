"""The record of one background operation on a task group: status and log.

The log is kept in the activity row and saved after every step, so that
clients polling `GET /api/v2/task-group/activity/{id}/` follow the
progress. Lines have the usual format `<asctime> - <logger> - <LEVEL> -
<message>`; the output of the commands that ran is included.

Levels follow the reference: the procedure's steps (its start and end, each
command with its output) are DEBUG, its milestones (manifest read, tasks
created, environment removed, task group deleted...) INFO, and what went
wrong WARNING or ERROR, so that a reader sees DEBUG and INFO lines
interleaved.
"""
import logging
from datetime import datetime, timezone

from fractal_server.db import db, utc_now
from fractal_server.db.models import TaskGroupActivityV2

logger = logging.getLogger("fractal_server.task_collection")
_FORMATTER = logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s")


def progress_stamp(action: str) -> str:
    """`[collect-task, 2026-11-21T19:28:13.935137Z]`, the prefix of progress lines."""
    now = datetime.now(tz=timezone.utc).replace(tzinfo=None).isoformat()
    return f"[{action}, {now}Z]"


class ActivityRecorder:
    """Status changes and log lines of one activity row (in the current session)."""

    def __init__(self, activity: TaskGroupActivityV2):
        self.activity_id = activity.id
        self.name = f"fractal_server.task_collection.activity_{activity.id}"
        self._lines: list[str] = [activity.log] if activity.log else []

    @property
    def activity(self) -> TaskGroupActivityV2:
        return db.session.get(TaskGroupActivityV2, self.activity_id)

    @property
    def text(self) -> str:
        return "\n".join(self._lines)

    def _add(self, level: int, message: str) -> None:
        record = logging.LogRecord(self.name, level, __file__, 0, message, None, None)
        self._lines.append(_FORMATTER.format(record))
        logger.log(logging.DEBUG if level < logging.WARNING else level, "activity %s: %s", self.activity_id, message)

    def debug(self, message: str) -> None:
        self._add(logging.DEBUG, message)

    def info(self, message: str) -> None:
        self._add(logging.INFO, message)

    def warning(self, message: str) -> None:
        self._add(logging.WARNING, message)

    def error(self, message: str) -> None:
        self._add(logging.ERROR, message)

    def output(self, what: str, text: str) -> None:
        """What a command printed, as one log entry."""
        text = text.rstrip()
        if text:
            self.debug(f"{what}:\n{text}")

    def save(self) -> None:
        """Store the log so far (commits the session); nothing to do if the row is gone."""
        activity = self.activity
        if activity is None:
            return
        activity.log = self.text
        db.session.commit()

    def set_ongoing(self) -> None:
        activity = self.activity
        if activity is not None:
            activity.status = "ongoing"
        self.save()

    def succeed(self) -> None:
        self.debug("END: success.")
        activity = self.activity
        if activity is None:
            return
        activity.status = "OK"
        activity.timestamp_ended = utc_now()
        self.save()

    def fail(self, reason: str) -> None:
        """Mark the activity failed with `reason` (the session is rolled back first)."""
        db.session.rollback()
        self.error(reason)
        self.debug("END: failure.")
        activity = self.activity
        if activity is None:
            return
        activity.status = "failed"
        activity.timestamp_ended = utc_now()
        self.save()
