"""The image list of every dataset: the only module that reads or writes `ImageV2`.

An image is a plain dict `{"zarr_url", "origin", "attributes", "types"}`,
already valid (the `SingleImage` rules, normalised urls). A dataset's list
is ordered by row id: new images are appended, updated images keep their
place. Filters are `Filters` dicts (`{"attributes": {...}, "types": {...}}`);
where several are given, an image must match all of them (`matching.py`
has the rules, including how Python's `1 == 1.0 == True` is honoured).
Functions take the dataset as a `DatasetV2` row or as its id.

Every function works in the caller's transaction (`db.session`) and never
commits. Writers keep the per-dataset summaries (`summaries.py`) in step
in the same transaction, so `summary()` and the totals of `query_page()`
cost no scan of the images. Only `all_images()`/`iter_images()`,
`summary()` with filters and `query_page()` without `page_size` read a
whole list (their answers are the whole list).

Writers do not check what the API checks (zarr_dir prefix, duplicates):
adding an existing `zarr_url` raises `sqlalchemy.exc.IntegrityError`.

Reading:  count, get_image, get_images, iter_images, all_images, summary, query_page
Writing:  add_image, add_images, update_image, upsert_images, remove_image,
          remove_images, apply_changes (a job's before/after lists as row operations)
"""
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Union

import psycopg
from sqlalchemy import Select, Text, cast, delete, func, insert, select, true, update
from sqlalchemy.exc import IntegrityError

from fractal_server.db import db
from fractal_server.db.models.projects import DatasetV2, ImageV2
from fractal_server.images import plans, summaries
from fractal_server.images.matching import Condition, conditions_of, sql_conditions

DatasetRef = Union[DatasetV2, int]

_COLUMNS = (ImageV2.zarr_url, ImageV2.origin, ImageV2.attributes, ImageV2.types)
_BATCH = 5000  # rows per statement in bulk operations
_COPY_FROM = 100  # rows from which inserts use COPY
_QUIET = {"synchronize_session": False}  # no ORM objects of ImageV2 are ever loaded


@dataclass
class Page:
    total: int
    page: int
    page_size: int
    images: list[dict] = field(default_factory=list)


@dataclass
class Summary:
    attributes: dict[str, list[Any]]  # key -> distinct values (Python equality)
    types: list[str]  # type keys present, whatever their value


# Reading ---------------------------------------------------------------------


def count(dataset: DatasetRef) -> int:
    return _dataset(dataset).image_count


def get_image(dataset: DatasetRef, zarr_url: str) -> Optional[dict]:
    dataset = _dataset(dataset)
    row = db.session.execute(_select(dataset).where(ImageV2.zarr_url == zarr_url)).first()
    return None if row is None else _image(row)


def get_images(dataset: DatasetRef, zarr_urls: Iterable[str]) -> dict[str, dict]:
    """The images among `zarr_urls` that exist, by url."""
    dataset = _dataset(dataset)
    found = {}
    for chunk in _chunks(list(zarr_urls)):
        for row in db.session.execute(_select(dataset).where(ImageV2.zarr_url.in_(chunk))):
            found[row.zarr_url] = _image(row)
    return found


def iter_images(dataset: DatasetRef, filters: Iterable[dict] = ()) -> Iterator[dict]:
    """All images matching `filters`, in list order, read in batches."""
    dataset = _dataset(dataset)
    where = plans.where(dataset.id, conditions_of(filters), plans.ORDERED)
    last_id = 0
    while True:
        rows = plans.fetch(
            select(ImageV2.id, *_COLUMNS)
            .where(ImageV2.id > last_id, *where)
            .order_by(ImageV2.id)
            .limit(_BATCH),
            plans.ORDERED,
        )
        yield from (_image(row) for row in rows)
        if len(rows) < _BATCH:
            return
        last_id = rows[-1].id


def all_images(dataset: DatasetRef) -> list[dict]:
    """The whole image list, in order."""
    return list(iter_images(dataset))


def summary(dataset: DatasetRef, filters: Iterable[dict] = ()) -> Summary:
    """Distinct attribute values and type keys of the images matching `filters`.

    Without effective filters this reads the summary tables only; otherwise
    two aggregate queries run over the matching images.
    """
    dataset = _dataset(dataset)
    conditions = conditions_of(filters)
    if not conditions:
        return Summary(*summaries.read(dataset))
    plan = plans.for_all(conditions)
    where = plans.where(dataset.id, conditions, plan)
    entries, key, text = _json_entries(ImageV2.attributes)
    pairs = plans.fetch(
        select(key, text).select_from(ImageV2).join(entries, true()).where(*where)
        .group_by(key, text).order_by(func.min(ImageV2.id)),
        plan,
    )
    attributes = summaries.distinct_by_key((k, json.loads(t)) for k, t in pairs)
    entries, key, _ = _json_entries(ImageV2.types)
    types = plans.fetch(
        select(key).select_from(ImageV2).join(entries, true()).where(*where).distinct().order_by(key), plan
    )
    return Summary(attributes, [key for (key,) in types])


def query_page(
    dataset: DatasetRef,
    *,
    filters: Iterable[dict] = (),
    zarr_url: Optional[str] = None,
    page: int = 1,
    page_size: Optional[int] = None,
) -> Page:
    """One page of the images matching `filters` (and `zarr_url`, if given).

    `page >= 1` and `page_size >= 1` (or None for "everything") are the
    caller's to check. A page past the end is clamped to the last one; an
    empty result is page 1. The total comes from the summaries when there is
    at most one condition; the page is read from whichever end of the list
    is nearer, so the last page costs what the first does, with the plan
    that `plans.choose()` finds cheaper.
    """
    dataset = _dataset(dataset)
    conditions = conditions_of(filters)
    total = _count(dataset, conditions, zarr_url)
    if page_size is None:
        page_size = total
    if total == 0:
        return Page(total=0, page=1, page_size=page_size)
    page = min(page, math.ceil(total / page_size))
    if zarr_url is not None:  # one image at most, found through the unique index
        statement = _select(dataset).where(ImageV2.zarr_url == zarr_url, *sql_conditions(conditions, _dialect()))
        return Page(total, page, page_size, [_image(row) for row in db.session.execute(statement)])
    offset = (page - 1) * page_size
    limit = min(page_size, total - offset)
    after = total - offset - limit
    backwards = after < offset
    skip = after if backwards else offset
    plan = plans.choose(dataset.image_count, total, skip + limit, conditions)
    statement = select(*_COLUMNS).where(*plans.where(dataset.id, conditions, plan))
    order = ImageV2.id.desc() if backwards else ImageV2.id
    if skip and not conditions:
        # Skip through the index alone (an index-only scan), then read the page.
        first = select(ImageV2.id).where(ImageV2.dataset_id == dataset.id).order_by(order).offset(skip).limit(1)
        first = first.scalar_subquery()
        statement = statement.where(ImageV2.id <= first if backwards else ImageV2.id >= first)
        skip = 0
    rows = plans.fetch(statement.order_by(order).offset(skip).limit(limit), plan)
    images = [_image(row) for row in (reversed(rows) if backwards else rows)]
    return Page(total=total, page=page, page_size=page_size, images=images)


# Writing ---------------------------------------------------------------------


def add_image(dataset: DatasetRef, image: dict) -> None:
    """Append one image."""
    add_images(dataset, [image])


def add_images(dataset: DatasetRef, images: Iterable[dict]) -> int:
    """Append images in the given order; returns how many."""
    dataset = _dataset(dataset)
    delta = summaries.Delta()
    rows = []
    for image in images:
        row = _row(image)
        delta.add(row)
        rows.append({**row, "dataset_id": dataset.id})
    _insert(rows)
    summaries.apply(dataset, delta)
    return len(rows)


def update_image(
    dataset: DatasetRef,
    zarr_url: str,
    *,
    attributes: Optional[dict] = None,
    types: Optional[dict] = None,
) -> Optional[dict]:
    """Replace the attributes and/or types of one image (None: keep).

    Returns the updated image, or None if there is no such image.
    """
    dataset = _dataset(dataset)
    existing = _lock_rows(dataset, [zarr_url])
    if not existing:
        return None
    row_id, old = existing[zarr_url]
    new = {
        **old,
        "attributes": old["attributes"] if attributes is None else attributes,
        "types": old["types"] if types is None else types,
    }
    _rewrite(dataset, [(row_id, old, new)])
    return new


def upsert_images(dataset: DatasetRef, images: list[dict]) -> None:
    """Store each image: an existing `zarr_url` gets the given origin,
    attributes and types (keeping its place), a new one is appended."""
    dataset = _dataset(dataset)
    existing = _lock_rows(dataset, [image["zarr_url"] for image in images])
    changes = [
        (existing[image["zarr_url"]][0], existing[image["zarr_url"]][1], image)
        for image in images
        if image["zarr_url"] in existing
    ]
    _rewrite(dataset, changes)
    add_images(dataset, [image for image in images if image["zarr_url"] not in existing])


def remove_image(dataset: DatasetRef, zarr_url: str) -> bool:
    """Remove one image; False if there was none."""
    return remove_images(dataset, [zarr_url]) == 1


def remove_images(dataset: DatasetRef, zarr_urls: Iterable[str]) -> int:
    """Remove the images with these urls (missing ones are ignored); returns how many."""
    dataset = _dataset(dataset)
    delta = summaries.Delta()
    for chunk in _chunks(list(zarr_urls)):
        removed = db.session.execute(
            delete(ImageV2)
            .where(ImageV2.dataset_id == dataset.id, ImageV2.zarr_url.in_(chunk))
            .returning(ImageV2.attributes, ImageV2.types)
            .execution_options(**_QUIET)
        )
        for attributes, types in removed:
            delta.add({"attributes": attributes, "types": types}, sign=-1)
    summaries.apply(dataset, delta)
    return -delta.images


def apply_changes(dataset: DatasetRef, before: list[dict], after: list[dict]) -> None:
    """Turn the stored list `before` into `after` with row operations only.

    Meant for a job: `before` is what `all_images()` returned when it
    started, `after` its final in-memory list. Images missing from `after`
    are removed, changed ones rewritten in place, new ones appended. An
    image that `after` places out of the stored order (e.g. removed and
    added again) is removed and appended, with everything after it.
    Costs O(len(before) + len(after)) in Python and one row operation per
    removed, changed or added image.
    """
    dataset = _dataset(dataset)
    old = {image["zarr_url"]: image for image in before}
    position = {url: index for index, url in enumerate(old)}
    kept_until, last = 0, -1
    for image in after:
        index = position.get(image["zarr_url"])
        if index is None or index < last:
            break
        kept_until, last = kept_until + 1, index
    kept = {image["zarr_url"]: image for image in after[:kept_until]}
    removed = [url for url in old if url not in kept]
    remove_images(dataset, removed)
    changed = [image for url, image in kept.items() if not _identical(_row(image), _row(old[url]))]
    if changed:
        upsert_images(dataset, changed)
    add_images(dataset, after[kept_until:])


# Helpers ---------------------------------------------------------------------


def _dataset(dataset: DatasetRef) -> DatasetV2:
    if isinstance(dataset, DatasetV2):
        return dataset
    found = db.session.get(DatasetV2, dataset)
    if found is None:
        raise LookupError(f"No DatasetV2 with id {dataset}")
    return found


def _insert(rows: list[dict]) -> None:
    """Insert image rows, in order: with COPY on PostgreSQL for bulk loads
    (several times faster), plain INSERTs otherwise."""
    if len(rows) < _COPY_FROM or _dialect() != "postgresql":
        for chunk in _chunks(rows):
            db.session.execute(insert(ImageV2.__table__), chunk)
        return
    statement = f"COPY {ImageV2.__tablename__} (dataset_id, zarr_url, origin, attributes, types) FROM STDIN"
    connection = db.session.connection().connection.driver_connection
    try:
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    (row["dataset_id"], row["zarr_url"], row["origin"],
                     json.dumps(row["attributes"]), json.dumps(row["types"]))
                )
    except psycopg.errors.IntegrityError as error:
        raise IntegrityError(statement, None, error) from error


def _lock_rows(dataset: DatasetV2, zarr_urls: list[str]) -> dict[str, tuple[int, dict]]:
    """`{zarr_url: (row id, image)}` of the existing ones, locked for update."""
    found = {}
    for chunk in _chunks(zarr_urls):
        rows = db.session.execute(
            select(ImageV2.id, *_COLUMNS)
            .where(ImageV2.dataset_id == dataset.id, ImageV2.zarr_url.in_(chunk))
            .with_for_update()
        )
        found.update({row.zarr_url: (row.id, _image(row)) for row in rows})
    return found


def _rewrite(dataset: DatasetV2, changes: list[tuple[int, dict, dict]]) -> None:
    """Write new origin/attributes/types for existing rows `(id, old, new)`."""
    delta = summaries.Delta()
    params = []
    for row_id, old, new in changes:
        new = _row(new)
        delta.change(old["attributes"], old["types"], -1)
        delta.change(new["attributes"], new["types"], +1)
        params.append({"id": row_id, "origin": new["origin"], "attributes": new["attributes"], "types": new["types"]})
    for chunk in _chunks(params):
        db.session.execute(update(ImageV2).execution_options(**_QUIET), chunk)
    summaries.apply(dataset, delta)


def _count(dataset: DatasetV2, conditions: list[Condition], zarr_url: Optional[str]) -> int:
    if zarr_url is not None:
        return db.session.scalar(
            select(func.count()).select_from(ImageV2).where(
                ImageV2.dataset_id == dataset.id, ImageV2.zarr_url == zarr_url,
                *sql_conditions(conditions, _dialect()),
            )
        )
    if not conditions:
        return dataset.image_count
    if len(conditions) == 1:
        return summaries.count_matching(dataset, conditions[0])
    plan = plans.for_all(conditions)
    statement = select(func.count()).select_from(ImageV2).where(*plans.where(dataset.id, conditions, plan))
    return plans.fetch(statement, plan)[0][0]


def _select(dataset: DatasetV2) -> Select:
    return select(*_COLUMNS).where(ImageV2.dataset_id == dataset.id)


def _json_entries(column) -> tuple:
    """`(table, key, JSON text of the value)` over the entries of a document.

    The table is a function of an `ImageV2` column: joined to `ImageV2` it
    yields one row per entry of each image.
    """
    if _dialect() == "postgresql":
        entries = func.jsonb_each(column).table_valued("key", "value")
        return entries, entries.c.key, cast(entries.c.value, Text)
    entries = func.json_each(column).table_valued("key", "value", "type")
    booleans = entries.c.type.in_(["true", "false"])
    return entries, entries.c.key, func.iif(booleans, entries.c.type, func.json_quote(entries.c.value))


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _image(row) -> dict:
    return {"zarr_url": row.zarr_url, "origin": row.origin, "attributes": row.attributes, "types": row.types}


def _row(image: dict) -> dict:
    return {
        "zarr_url": image["zarr_url"],
        "origin": image.get("origin"),
        "attributes": image.get("attributes") or {},
        "types": image.get("types") or {},
    }


def _identical(first: dict, second: dict) -> bool:
    """Equal with equal JSON types (Python alone would take `1` for `true`)."""
    if first["origin"] != second["origin"]:
        return False
    for name in ("attributes", "types"):
        a, b = first[name], second[name]
        if a.keys() != b.keys() or any(type(value) is not type(b[key]) or value != b[key] for key, value in a.items()):
            return False
    return True


def _chunks(items: list) -> Iterator[list]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]
