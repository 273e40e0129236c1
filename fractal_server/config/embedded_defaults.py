"""Embedded defaults for development: a server that starts with no set-up.

Used by `fractalctl start --dev`, by `flask --app fractal_server.main run` and
by the demo. Whatever the environment does not configure is filled with
defaults inside one local data folder: a SQLite database, a generated secret,
the tasks and jobs folders. Production entry points never call this.
"""
import logging
import secrets
from pathlib import Path

from fractal_server.config.settings import Settings

logger = logging.getLogger("fractal_server.config")

DEFAULT_DATA_DIR_NAME = "fractal-server-data"
SQLITE_FILE_NAME = "fractal_server.sqlite"


def fill_embedded_defaults(settings: Settings, data_dir: Path) -> tuple[Settings, list[str]]:
    """Return the completed settings and the names of the variables filled."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    filled = {}
    if not settings.JWT_SECRET_KEY:
        filled["JWT_SECRET_KEY"] = _read_or_create_secret(data_dir / "jwt_secret_key")
    if not settings.FRACTAL_TASKS_DIR:
        filled["FRACTAL_TASKS_DIR"] = data_dir / "tasks"
    if not settings.FRACTAL_RUNNER_WORKING_BASE_DIR:
        filled["FRACTAL_RUNNER_WORKING_BASE_DIR"] = data_dir / "jobs"
    return settings.model_copy(update=filled), sorted(filled)


def sqlite_path(data_dir: Path) -> Path:
    return data_dir.resolve() / SQLITE_FILE_NAME


def log_banner(data_dir: Path, filled: list[str], uses_sqlite: bool) -> None:
    lines = [
        "DEVELOPMENT MODE: embedded defaults in use, not for production.",
        f"  data folder: {data_dir.resolve()}",
    ]
    if uses_sqlite:
        lines.append(f"  database: SQLite file {sqlite_path(data_dir)} (POSTGRES_DB not set)")
    if filled:
        lines.append("  filled in: " + ", ".join(filled))
    for line in lines:
        logger.warning(line)


def _read_or_create_secret(path: Path) -> str:
    """A random secret kept in the data folder, readable only by its owner.

    An empty file (e.g. left by an interrupted first start) gets a new secret.
    """
    if path.exists():
        secret = path.read_text().strip()
        if secret:
            return secret
    secret = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.chmod(0o600)  # exactly 0600, whatever the umask or an older file's mode
    path.write_text(secret + "\n")
    return secret
