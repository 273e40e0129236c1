from datetime import datetime
from typing import Optional

from sqlalchemy import DateTime, ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fractal_server.db import JSONDocument, db, utc_now


class TaskGroupV2(db.Model):
    """A collected package (or a custom group of tasks) and its environment."""

    __tablename__ = "taskgroupv2"
    __table_args__ = (
        # Two task groups never share an environment folder, even when two
        # collections of the same package are requested at the same moment.
        Index(
            "ix_taskgroupv2_path_unique",
            "path",
            unique=True,
            postgresql_where=text("path IS NOT NULL"),
            sqlite_where=text("path IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_oauth.id"), index=True)
    user_group_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("usergroup.id", ondelete="SET NULL"), index=True
    )
    origin: Mapped[str]
    pkg_name: Mapped[str]
    version: Mapped[Optional[str]]
    python_version: Mapped[Optional[str]]
    path: Mapped[Optional[str]]
    venv_path: Mapped[Optional[str]]
    wheel_path: Mapped[Optional[str]]
    pip_extras: Mapped[Optional[str]]
    pinned_package_versions: Mapped[dict] = mapped_column(
        JSONDocument, default=dict, server_default="{}"
    )
    """Pins are checked and installed in the order given."""
    pip_freeze: Mapped[Optional[str]]
    venv_size_in_kB: Mapped[Optional[int]]
    venv_file_number: Mapped[Optional[int]]
    active: Mapped[bool] = mapped_column(default=True)
    timestamp_created: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now
    )
    timestamp_last_used: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now
    )

    task_list: Mapped[list["TaskV2"]] = relationship(
        back_populates="task_group", cascade="all, delete-orphan", order_by="TaskV2.id"
    )


class TaskV2(db.Model):
    __tablename__ = "taskv2"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    type: Mapped[str]
    command_non_parallel: Mapped[Optional[str]]
    command_parallel: Mapped[Optional[str]]
    source: Mapped[Optional[str]]
    meta_non_parallel: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    meta_parallel: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    version: Mapped[Optional[str]]
    args_schema_non_parallel: Mapped[Optional[dict]] = mapped_column(JSONDocument)
    args_schema_parallel: Mapped[Optional[dict]] = mapped_column(JSONDocument)
    args_schema_version: Mapped[Optional[str]]
    docs_info: Mapped[Optional[str]]
    docs_link: Mapped[Optional[str]]
    input_types: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    output_types: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    taskgroupv2_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("taskgroupv2.id", ondelete="CASCADE"), index=True
    )
    category: Mapped[Optional[str]]
    modality: Mapped[Optional[str]]
    authors: Mapped[Optional[str]]
    tags: Mapped[list] = mapped_column(JSONDocument, default=list)

    task_group: Mapped[Optional[TaskGroupV2]] = relationship(back_populates="task_list")


class TaskGroupActivityV2(db.Model):
    """One collect/deactivate/reactivate operation and its accumulated log."""

    __tablename__ = "taskgroupactivityv2"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_oauth.id"), index=True)
    taskgroupv2_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("taskgroupv2.id", ondelete="SET NULL"), index=True
    )
    timestamp_started: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now
    )
    timestamp_ended: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    pkg_name: Mapped[str]
    version: Mapped[str]
    status: Mapped[str]
    action: Mapped[str]
    log: Mapped[Optional[str]]
    process_id: Mapped[Optional[str]]
    """The server process running the background work (`host:pid:start`), so that
    the work of a process that died can be failed instead of staying pending."""
