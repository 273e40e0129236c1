"""Which database the server talks to, and how."""
from pathlib import Path
from typing import Optional

from sqlalchemy import URL, event
from sqlalchemy.engine import Engine

from fractal_server.config.settings import Settings


def database_url(settings: Settings, sqlite_file: Optional[Path]) -> URL:
    """PostgreSQL whenever `POSTGRES_DB` is set, else the given SQLite file."""
    if settings.POSTGRES_DB:
        return URL.create(
            drivername="postgresql+psycopg",
            username=settings.POSTGRES_USER,
            password=settings.POSTGRES_PASSWORD,
            host=settings.POSTGRES_HOST,
            port=int(settings.POSTGRES_PORT),
            database=settings.POSTGRES_DB,
        )
    if sqlite_file is None:
        raise ValueError("No database configured")
    return URL.create(drivername="sqlite", database=str(sqlite_file))


@event.listens_for(Engine, "connect")
def _enforce_sqlite_foreign_keys(dbapi_connection, _record) -> None:
    """SQLite ignores ON DELETE rules unless asked per connection."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
