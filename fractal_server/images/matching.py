"""Image filters as SQL conditions on `ImageV2` (`runner-v2.md` section 3).

An image matches a set of filters when:

* for every type filter `(key, value)`: `image.types.get(key, False) == value`
  (a missing type counts as `false`);
* for every attribute filter `(key, value)` whose value is not null:
  `image.attributes.get(key) == value` (null means "no constraint").

Equality is Python's, where `1 == 1.0 == True` and `0 == 0.0 == False`, while
JSON (and PostgreSQL's `jsonb`) keeps booleans apart from numbers. So an
attribute filter `1` (or `1.0`, or `true`) is turned into "the stored value is
the number 1 or the boolean true"; `jsonb` already compares `1` and `1.0` as
equal numbers. Other values match only themselves. The one remaining
difference with Python: numbers are compared as exact decimals, so an integer
beyond 2**53 does not equal the float nearest to it.

On PostgreSQL a condition is a `jsonb` containment (`@>`). Written with the
operator, next to a containment test on the dataset id, the three-column GIN
index of `ImageV2` serves it and finds only that dataset's matching rows; a
caller that knows an ordered scan of the dataset is cheaper asks for the
plain form instead, the function `jsonb_contains()`, which no index serves. A false type
filter ("missing or false") is never indexable. On SQLite (development only)
the conditions read the documents with `json_each`.
"""
import json
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from sqlalchemy import Boolean, and_, exists, func, literal, not_, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from fractal_server.db.models.projects import ImageV2, dataset_as_json


@dataclass(frozen=True)
class Condition:
    """One filter: `kind` is "attributes" or "types"."""

    kind: str
    key: str
    value: Any


def conditions_of(filters: Iterable[Optional[dict]]) -> list[Condition]:
    """The conditions of several `Filters` dicts, all of which must hold."""
    conditions = []
    for item in filters:
        item = item or {}
        for key, value in (item.get("attributes") or {}).items():
            if value is not None:
                conditions.append(Condition("attributes", key, value))
        for key, value in (item.get("types") or {}).items():
            conditions.append(Condition("types", key, bool(value)))
    return conditions


def json_text(value: Any) -> str:
    """The canonical JSON text of a scalar (distinct for `1`, `1.0`, `true`)."""
    return json.dumps(value)


def equal_values(value: Any) -> list[Any]:
    """The JSON-distinct scalars that equal `value` in Python."""
    if isinstance(value, str):
        return [value]
    found = {json_text(value): value}
    if value in (0, 1):
        candidates = [bool(value), int(value), float(value)]
    elif isinstance(value, float) and value.is_integer():
        candidates = [int(value)]
    elif isinstance(value, int) and float(value) == value:
        candidates = [float(value)]
    else:
        candidates = []
    for candidate in candidates:
        found.setdefault(json_text(candidate), candidate)
    return list(found.values())


def indexable(conditions: list[Condition]) -> bool:
    """Whether the GIN index can narrow the search (false types cannot)."""
    return any(condition.kind == "attributes" or condition.value for condition in conditions)


def sql_conditions(
    conditions: list[Condition], dialect: str, indexed_dataset: Optional[int] = None
) -> list[ColumnElement]:
    """WHERE clauses on `ImageV2` for `conditions` (see the module docstring).

    With `indexed_dataset`, the PostgreSQL clauses are containment tests that
    the GIN index serves, including one on that dataset id; without, they are
    function calls that no index can serve.
    """
    if dialect != "postgresql":
        return [_sqlite(condition) for condition in conditions]
    if indexed_dataset is None:
        def contains(column, document: dict) -> ColumnElement:
            return func.jsonb_contains(column, literal(document, JSONB), type_=Boolean)

        return _postgresql(conditions, contains)

    def contains(column, document: dict) -> ColumnElement:
        return column.op("@>", is_comparison=True)(literal(document, JSONB))

    return [contains(dataset_as_json(), indexed_dataset), *_postgresql(conditions, contains)]


def _postgresql(conditions: list[Condition], contains) -> list[ColumnElement]:
    clauses = []
    # Conditions with a single possible JSON value share one containment test.
    single_attributes, true_types = {}, {}
    for condition in conditions:
        if condition.kind == "types":
            if condition.value:
                true_types[condition.key] = True
            else:
                clauses.append(not_(func.jsonb_contains(ImageV2.types, literal({condition.key: True}, JSONB))))
            continue
        values = _jsonb_distinct(equal_values(condition.value))
        if len(values) == 1:
            if condition.key in single_attributes and single_attributes[condition.key] != values[0]:
                clauses.append(literal(False))
            single_attributes[condition.key] = values[0]
        else:
            clauses.append(or_(*(contains(ImageV2.attributes, {condition.key: value}) for value in values)))
    if single_attributes:
        clauses.insert(0, contains(ImageV2.attributes, single_attributes))
    if true_types:
        clauses.insert(0, contains(ImageV2.types, true_types))
    return clauses


def _jsonb_distinct(values: list[Any]) -> list[Any]:
    """`jsonb` compares numbers by value: keep one number and the boolean, if any."""
    numbers = [v for v in values if not isinstance(v, (bool, str))]
    others = [v for v in values if isinstance(v, (bool, str))]
    return others + numbers[:1]


def _sqlite(condition: Condition) -> ColumnElement:
    # `json_each` gives `true`/`false` as 1/0 and SQLite compares 1 = 1.0, but
    # never a number with a text: that is Python's equality on scalars.
    column = ImageV2.types if condition.kind == "types" else ImageV2.attributes
    entries = func.json_each(column).table_valued("key", "value").alias()
    value = True if condition.kind == "types" else condition.value
    found = exists(
        select(1).select_from(entries).where(and_(entries.c.key == condition.key, entries.c.value == value))
    )
    if condition.kind == "types" and not condition.value:
        return not_(found)
    return found
