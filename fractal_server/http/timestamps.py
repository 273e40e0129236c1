"""Timestamps as the API shows them: UTC, ISO 8601, microseconds, `+00:00`."""
from datetime import datetime, timezone
from typing import Annotated

from pydantic import PlainSerializer


def format_timestamp(value: datetime) -> str:
    """Naive values (SQLite returns them) are UTC by construction."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str, when_used="json")]
