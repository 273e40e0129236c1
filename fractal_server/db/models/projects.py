from datetime import datetime
from typing import Optional

from sqlalchemy import DateTime, ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fractal_server.db import JSONDocument, db, utc_now


class ProjectV2(db.Model):
    __tablename__ = "projectv2"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    timestamp_created: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now
    )


class LinkUserProjectV2(db.Model):
    __tablename__ = "linkuserprojectv2"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projectv2.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_oauth.id", ondelete="CASCADE"), primary_key=True
    )


class DatasetV2(db.Model):
    """A dataset; its images are rows of `ImageV2`, never a list in this row."""

    __tablename__ = "datasetv2"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projectv2.id", ondelete="CASCADE"), index=True
    )
    zarr_dir: Mapped[str]
    history: Mapped[list] = mapped_column(JSONDocument, default=list)
    filters: Mapped[dict] = mapped_column(
        JSONDocument, default=lambda: {"attributes": {}, "types": {}}
    )
    timestamp_created: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now
    )
    # How many `ImageV2` rows the dataset has; kept by `fractal_server.images`.
    image_count: Mapped[int] = mapped_column(default=0, server_default="0")

    project: Mapped[ProjectV2] = relationship(lazy="joined")


class ImageV2(db.Model):
    """One image of a dataset.

    The list order of a dataset's images is the order of `id` (hence the
    `(dataset_id, id)` index). Attributes and types are JSON documents (JSONB
    on PostgreSQL, with a GIN index so that filters run in the database).
    Rows are written only through `fractal_server.images.store`, which keeps
    the summary tables below in step.
    """

    __tablename__ = "imagev2"
    __table_args__ = (
        UniqueConstraint("dataset_id", "zarr_url"),
        Index("ix_imagev2_dataset_id_id", "dataset_id", "id"),
        Index(
            "ix_imagev2_attributes_gin",
            "attributes",
            postgresql_using="gin",
            postgresql_ops={"attributes": "jsonb_path_ops"},
        ),
        Index(
            "ix_imagev2_types_gin",
            "types",
            postgresql_using="gin",
            postgresql_ops={"types": "jsonb_path_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasetv2.id", ondelete="CASCADE"))
    zarr_url: Mapped[str]
    origin: Mapped[Optional[str]]
    attributes: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    types: Mapped[dict] = mapped_column(JSONDocument, default=dict)


class ImageAttributeCount(db.Model):
    """How many images of a dataset have attribute `key` equal to `value`.

    `value` is the canonical JSON text of the value (`json.dumps`), so `1`,
    `1.0` and `true` are separate rows; rows whose count drops to zero are
    deleted. `id` remembers which value was recorded first.
    """

    __tablename__ = "imagev2_attribute_count"
    __table_args__ = (UniqueConstraint("dataset_id", "key", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasetv2.id", ondelete="CASCADE"))
    key: Mapped[str]
    value: Mapped[str]
    count: Mapped[int]


class ImageTypeCount(db.Model):
    """How many images of a dataset have type `key` set to `value`."""

    __tablename__ = "imagev2_type_count"

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasetv2.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(primary_key=True)
    value: Mapped[bool] = mapped_column(primary_key=True)
    count: Mapped[int]
