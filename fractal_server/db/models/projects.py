from datetime import datetime
from typing import Optional

from sqlalchemy import DateTime, ForeignKey, Index, Text, UniqueConstraint, cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fractal_server.db import JSONDocument, QueryableJSON, db, utc_now


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
    on PostgreSQL). Rows are written only through `fractal_server.images.store`,
    which keeps the summary tables below in step.
    """

    __tablename__ = "imagev2"
    __table_args__ = (
        UniqueConstraint("dataset_id", "zarr_url"),
        Index("ix_imagev2_dataset_id_id", "dataset_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasetv2.id", ondelete="CASCADE"))
    zarr_url: Mapped[str]
    origin: Mapped[Optional[str]]
    attributes: Mapped[dict] = mapped_column(QueryableJSON, default=dict)
    types: Mapped[dict] = mapped_column(QueryableJSON, default=dict)


def dataset_as_json():
    """`dataset_id` as a JSON number: the first column of the GIN index below."""
    return cast(cast(ImageV2.dataset_id, Text), JSONB)


# On PostgreSQL, one GIN index (`jsonb_path_ops`) over the dataset id (as JSON),
# the attributes and the types: a query with containment tests (`@>`) on the
# three finds the matching images of one dataset without touching the rows of
# other datasets. `fastupdate` is off: queries never scan a pending list.
ImageV2.__table__.append_constraint(
    Index(
        "ix_imagev2_gin",
        dataset_as_json().label("dataset"),
        "attributes",
        "types",
        postgresql_using="gin",
        postgresql_ops={"dataset": "jsonb_path_ops", "attributes": "jsonb_path_ops", "types": "jsonb_path_ops"},
        postgresql_with={"fastupdate": "off"},
    ).ddl_if(dialect="postgresql")
)


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
