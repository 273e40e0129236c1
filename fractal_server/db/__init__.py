"""The database: one Flask-SQLAlchemy handle and the column types we share."""
from datetime import datetime, timezone

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, MetaData
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names, so that migrations are the same on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONDocument = JSON()
"""A JSON document that users or task authors write and read back: stored as
`json` on PostgreSQL, which keeps the text as given (`jsonb` would reorder the
keys of objects, and a task's argument form follows the order of its schema)."""

QueryableJSON = JSON().with_variant(JSONB(), "postgresql")
"""A JSON document the database looks inside: `jsonb` on PostgreSQL (GIN
index, `@>` containment); key order is not kept."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


def utc_now() -> datetime:
    return datetime.now(tz=timezone.utc)
