from datetime import datetime
from typing import Optional

from sqlalchemy import DateTime, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fractal_server.db import JSONDocument, db, utc_now
from fractal_server.db.models.projects import ProjectV2
from fractal_server.db.models.tasks import TaskV2


class WorkflowV2(db.Model):
    __tablename__ = "workflowv2"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projectv2.id", ondelete="CASCADE"), index=True
    )
    timestamp_created: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now
    )

    project: Mapped[ProjectV2] = relationship(lazy="joined")
    task_list: Mapped[list["WorkflowTaskV2"]] = relationship(
        back_populates="workflow",
        order_by="WorkflowTaskV2.order",
        cascade="all, delete-orphan",
    )


class WorkflowTaskV2(db.Model):
    __tablename__ = "workflowtaskv2"

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[int] = mapped_column(
        ForeignKey("workflowv2.id", ondelete="CASCADE"), index=True
    )
    order: Mapped[Optional[int]]
    meta_parallel: Mapped[Optional[dict]] = mapped_column(JSONDocument)
    meta_non_parallel: Mapped[Optional[dict]] = mapped_column(JSONDocument)
    args_parallel: Mapped[Optional[dict]] = mapped_column(JSONDocument)
    args_non_parallel: Mapped[Optional[dict]] = mapped_column(JSONDocument)
    input_filters: Mapped[dict] = mapped_column(
        JSONDocument, default=lambda: {"attributes": {}, "types": {}}
    )
    task_type: Mapped[str]
    task_id: Mapped[int] = mapped_column(ForeignKey("taskv2.id"), index=True)

    workflow: Mapped[WorkflowV2] = relationship(back_populates="task_list")
    task: Mapped[TaskV2] = relationship(lazy="joined")
