"""Per-dataset summaries of the image list, kept in step with every write.

Three numbers are kept for each dataset, so that no request has to scan its
images to know them:

* `DatasetV2.image_count`: how many images it has;
* `ImageAttributeCount(dataset_id, key, value, count)`: how many images have
  attribute `key` equal to `value` (the canonical JSON text of the value);
* `ImageTypeCount(dataset_id, key, value, count)`: how many images have type
  `key` set to `value` (true or false).

A write collects its changes in a `Delta` (+1 for each value of an added
image, -1 for each value of a removed one, both for an update) and `apply()`
adds it with one upsert per table, in the caller's transaction. Rows whose
count reaches zero are deleted. Upserts are atomic and touch rows in sorted
order, so concurrent writers neither lose counts nor deadlock on them.
"""
import json
from collections import Counter
from typing import Any, Iterable

from sqlalchemy import delete, func, literal, null, select, tuple_, union_all, update
from sqlalchemy.dialects import postgresql, sqlite

from fractal_server.db import db
from fractal_server.db.models.projects import DatasetV2, ImageAttributeCount, ImageTypeCount
from fractal_server.images.matching import Condition, equal_values, json_text

_CHUNK = 5000  # rows per upsert statement (PostgreSQL allows 65535 parameters)


class Delta:
    """Changes to the summaries of one dataset."""

    def __init__(self) -> None:
        self.images = 0
        self.attributes: Counter = Counter()
        self.types: Counter = Counter()

    def add(self, image: dict, sign: int = 1) -> None:
        """Count `image` in (`sign=1`) or out (`sign=-1`)."""
        self.images += sign
        self.change(image.get("attributes") or {}, image.get("types") or {}, sign)

    def change(self, attributes: dict, types: dict, sign: int) -> None:
        for key, value in attributes.items():
            self.attributes[(key, json_text(value))] += sign
        for key, value in types.items():
            self.types[(key, bool(value))] += sign


def apply(dataset: DatasetV2, delta: Delta) -> None:
    """Add `delta` to the summaries of `dataset` (in the current transaction)."""
    if delta.images:
        db.session.execute(
            update(DatasetV2)
            .where(DatasetV2.id == dataset.id)
            .values(image_count=DatasetV2.image_count + delta.images)
            .execution_options(synchronize_session=False)
        )
        db.session.expire(dataset, ["image_count"])
    _upsert(ImageAttributeCount, dataset.id, delta.attributes, (ImageAttributeCount.id,))
    _upsert(ImageTypeCount, dataset.id, delta.types, (ImageTypeCount.key, ImageTypeCount.value))


def _upsert(model, dataset_id: int, counts: Counter, identity: tuple) -> None:
    rows = [
        {"dataset_id": dataset_id, "key": key, "value": value, "count": count}
        for (key, value), count in sorted(counts.items())
        if count
    ]
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    emptied = []
    for start in range(0, len(rows), _CHUNK):
        statement = insert(model).values(rows[start : start + _CHUNK])
        statement = statement.on_conflict_do_update(
            index_elements=["dataset_id", "key", "value"],
            set_={"count": model.count + statement.excluded.count},
        ).returning(*identity, model.count)
        emptied += [row[:-1] for row in db.session.execute(statement) if row[-1] <= 0]
    if emptied:
        _delete_rows(model, dataset_id, identity, emptied)


def _delete_rows(model, dataset_id: int, identity: tuple, keys: list[tuple]) -> None:
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        db.session.execute(
            delete(model)
            .where(model.dataset_id == dataset_id, tuple_(*identity).in_(chunk), model.count <= 0)
            .execution_options(synchronize_session=False)
        )


# Reading ---------------------------------------------------------------------


def read(dataset: DatasetV2) -> tuple[dict[str, list[Any]], list[str]]:
    """`(attribute key -> distinct values, type keys)` of a whole dataset.

    Attribute values are collapsed by Python equality, keeping the one
    recorded first; type keys are listed whatever their value.
    """
    attributes = select(
        ImageAttributeCount.key, ImageAttributeCount.value, ImageAttributeCount.id.label("rank")
    ).where(ImageAttributeCount.dataset_id == dataset.id)
    types = select(ImageTypeCount.key, null().label("value"), literal(0).label("rank")).where(
        ImageTypeCount.dataset_id == dataset.id
    )
    rows = db.session.execute(union_all(attributes, types).order_by("rank", "key")).all()
    values = distinct_by_key((key, json.loads(value)) for key, value, _ in rows if value is not None)
    return values, sorted({key for key, value, _ in rows if value is None})


def count_matching(dataset: DatasetV2, condition: Condition) -> int:
    """How many images of `dataset` satisfy the single `condition`."""
    if condition.kind == "types":
        with_true = db.session.scalar(
            select(func.coalesce(func.sum(ImageTypeCount.count), 0)).where(
                ImageTypeCount.dataset_id == dataset.id,
                ImageTypeCount.key == condition.key,
                ImageTypeCount.value.is_(True),
            )
        )
        return with_true if condition.value else dataset.image_count - with_true
    texts = [json_text(value) for value in equal_values(condition.value)]
    return db.session.scalar(
        select(func.coalesce(func.sum(ImageAttributeCount.count), 0)).where(
            ImageAttributeCount.dataset_id == dataset.id,
            ImageAttributeCount.key == condition.key,
            ImageAttributeCount.value.in_(texts),
        )
    )


def distinct_by_key(pairs: Iterable[tuple[str, Any]]) -> dict[str, list[Any]]:
    """Group values by key, keeping the first of those equal in Python.

    Python's `1`, `1.0` and `True` are equal with equal hashes, so a dict
    collapses them just as the equality used by filters does.
    """
    grouped: dict[str, dict] = {}
    for key, value in pairs:
        grouped.setdefault(key, {}).setdefault(value, value)
    return {key: list(values.values()) for key, values in grouped.items()}
