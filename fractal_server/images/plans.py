"""How PostgreSQL reads images: chosen here, not left to the planner.

The planner's guesses are poor for this table: right after a bulk import it
has no statistics (it then expects a few dozen rows per dataset), and it
cannot know how many images a `jsonb` containment matches. Both lead to plans
that read and sort a whole dataset to return 100 rows. The store knows the
exact numbers (from the summaries), so it picks one of two plans (`choose()`
for a page, `for_all()` for counts and summaries that read every match) and
pins it for the one statement with transaction-local planner settings:

* `ORDERED`: walk the `(dataset_id, id)` index in list order (or backwards)
  and stop after enough matching rows. Costs about `needed * images /
  matches` row reads: right without filters or with unselective ones.
  Filters are written so that no GIN index can serve them.
* `GIN`: let the GIN index (dataset id, attributes, types) find all the
  dataset's matching rows, then sort them. Costs about `matches` row reads:
  right for selective filters. The plain dataset condition is hidden from
  the `(dataset_id, id)` index (else the planner may prefer scanning the
  whole dataset through it); the GIN index has the dataset id too.

On other databases (SQLite, development only) statements run as they are.
"""
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.sql.elements import ColumnElement

from fractal_server.db import db
from fractal_server.db.models.projects import ImageV2
from fractal_server.images.matching import Condition, indexable, sql_conditions

ORDERED = "ordered"
GIN = "gin"

_SETTINGS = {
    ORDERED: {"enable_seqscan": "off", "enable_bitmapscan": "off", "enable_sort": "off"},
    GIN: {"enable_seqscan": "off", "enable_indexscan": "off"},
}


def choose(image_count: int, matches: int, needed: int, conditions: list[Condition]) -> str:
    """The plan that reads fewer rows to return `needed` of `matches` rows."""
    if indexable(conditions) and matches * matches < needed * max(image_count, 1):
        return GIN
    return ORDERED


def for_all(conditions: list[Condition]) -> str:
    """The plan to read every matching row (counts, summaries)."""
    return GIN if indexable(conditions) else ORDERED


def where(dataset_id: int, conditions: list[Condition], plan: str) -> list[ColumnElement]:
    """The dataset's images matching `conditions`, written for `plan`."""
    if plan == ORDERED:
        return [ImageV2.dataset_id == dataset_id, *sql_conditions(conditions, _dialect())]
    # `+ 0`: the (dataset_id, id) index must not compete with the GIN index.
    return [ImageV2.dataset_id + 0 == dataset_id, *sql_conditions(conditions, _dialect(), dataset_id)]


def fetch(statement: Select, plan: str) -> list[Any]:
    """All rows of `statement`, read with `plan` on PostgreSQL."""
    if _dialect() != "postgresql":
        return db.session.execute(statement).all()
    previous = _configure(_SETTINGS[plan])
    try:
        return db.session.execute(statement).all()
    finally:
        _configure(previous)


def _configure(settings: dict[str, str]) -> dict[str, str]:
    """Set planner settings for the transaction; returns the previous values."""
    before = select(*(func.current_setting(name).label(name) for name in settings)).offset(0).subquery()
    changes = [func.set_config(name, value, True) for name, value in settings.items()]
    row = db.session.execute(select(*before.c, *changes)).one()
    return {name: row[index] for index, name in enumerate(settings)}


def _dialect() -> str:
    return db.session.get_bind().dialect.name
