from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, DateTime, ForeignKey, select
from sqlalchemy.orm import Mapped, mapped_column

from fractal_server.db import JSONDocument, db, utc_now


class JobV2(db.Model):
    """One run of a workflow range on a dataset.

    Foreign keys become null when the project, workflow or dataset is
    deleted; the dumps keep what they were at submission. `executor_id` and
    `executor_heartbeat` tell which server process runs the job (see
    `fractal_server.runner.executor`); `runner_state` where it is, for a
    process that adopts it (see `fractal_server.runner.phases`).
    """

    __tablename__ = "jobv2"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("projectv2.id", ondelete="SET NULL"), index=True
    )
    workflow_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("workflowv2.id", ondelete="SET NULL"), index=True
    )
    dataset_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("datasetv2.id", ondelete="SET NULL"), index=True
    )
    user_email: Mapped[str]
    slurm_account: Mapped[Optional[str]]
    project_dump: Mapped[dict] = mapped_column(JSONDocument)
    workflow_dump: Mapped[dict] = mapped_column(JSONDocument)
    dataset_dump: Mapped[dict] = mapped_column(JSONDocument)
    worker_init: Mapped[Optional[str]]
    working_dir: Mapped[Optional[str]]
    working_dir_user: Mapped[Optional[str]]
    first_task_index: Mapped[int]
    last_task_index: Mapped[int]
    start_timestamp: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now
    )
    end_timestamp: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(default="submitted", index=True)
    log: Mapped[Optional[str]]
    executor_id: Mapped[Optional[str]]
    """`host:pid:start` of the server process running the job (null until claimed)."""
    executor_heartbeat: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    runner_state: Mapped[Optional[dict]] = mapped_column(JSON)
    """`{"phase": [order, step] or null, "handle": backend handle or null}` once the job started."""


def submitted_job_ids(*conditions) -> list[int]:
    """Ids of `submitted` jobs matching the conditions (for 'in use' checks)."""
    return list(
        db.session.scalars(select(JobV2.id).where(JobV2.status == "submitted", *conditions).order_by(JobV2.id))
    )
