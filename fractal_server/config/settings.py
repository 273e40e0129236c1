"""Server settings, read from the environment and from `.fractal_server.env`.

Every variable of fractal-server 2.9 is here, with the same name, default and
validation. Validation problems are raised as `FractalConfigurationError`
with a one-line message that names the variable.
"""
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Optional

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, PositiveInt, ValidationError, field_validator, model_validator

from fractal_server import __version__
from fractal_server.config.errors import FractalConfigurationError

logger = logging.getLogger("fractal_server.config")

ENV_FILE_NAME = ".fractal_server.env"
TASKS_PYTHON_VERSIONS = ("3.9", "3.10", "3.11", "3.12")
OAUTH_PROVIDERS_WITHOUT_DISCOVERY = ("GOOGLE", "GITHUB")


def tasks_python_key(version: str) -> str:
    """`"3.10"` -> `"FRACTAL_TASKS_PYTHON_3_10"`."""
    return "FRACTAL_TASKS_PYTHON_" + version.replace(".", "_")


class OAuthClientConfig(BaseModel):
    """One OAuth2/OpenID Connect provider, from the `OAUTH_<NAME>_*` variables."""

    CLIENT_NAME: str
    CLIENT_ID: str
    CLIENT_SECRET: str
    OIDC_CONFIGURATION_ENDPOINT: Optional[str] = None
    REDIRECT_URL: Optional[str] = None


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    PROJECT_NAME: str = "Fractal Server"
    PROJECT_VERSION: str = __version__

    OAUTH_CLIENTS_CONFIG: list[OAuthClientConfig] = []
    JWT_EXPIRE_SECONDS: int = 180
    JWT_SECRET_KEY: Optional[str] = None
    COOKIE_EXPIRE_SECONDS: int = 86400

    DB_ECHO: bool = False
    POSTGRES_USER: Optional[str] = None
    POSTGRES_PASSWORD: Optional[str] = None
    POSTGRES_HOST: str = "localhost"
    POSTGRES_PORT: str = "5432"
    POSTGRES_DB: Optional[str] = None

    FRACTAL_DEFAULT_ADMIN_EMAIL: str = "admin@fractal.xy"
    FRACTAL_DEFAULT_ADMIN_PASSWORD: str = "1234"
    FRACTAL_DEFAULT_ADMIN_USERNAME: str = "admin"

    FRACTAL_TASKS_DIR: Optional[Path] = None
    FRACTAL_RUNNER_BACKEND: str = "local"
    FRACTAL_RUNNER_WORKING_BASE_DIR: Optional[Path] = None
    FRACTAL_LOGGING_LEVEL: int = logging.INFO
    FRACTAL_LOCAL_CONFIG_FILE: Optional[Path] = None
    FRACTAL_API_MAX_JOB_LIST_LENGTH: int = 50
    FRACTAL_GRACEFUL_SHUTDOWN_TIME: int = 30
    FRACTAL_MAX_REQUEST_BODY_BYTES: PositiveInt = 256 * 1024 * 1024
    """Larger request bodies are refused (413). The default fits a dataset import
    of 300,000 images (about 110 MB with long zarr URLs, origins and three
    attributes each) with more than twice that to spare."""

    FRACTAL_SLURM_CONFIG_FILE: Optional[Path] = None
    FRACTAL_SLURM_WORKER_PYTHON: Optional[str] = None
    FRACTAL_SLURM_POLL_INTERVAL: int = 5
    FRACTAL_SLURM_SBATCH_SLEEP: float = 0
    FRACTAL_SLURM_ERROR_HANDLING_INTERVAL: int = 5
    FRACTAL_SLURM_OUTAGE_LIMIT: PositiveInt = 600
    """Seconds that `squeue` may keep failing (controller down, SSH host unreachable) while jobs wait."""
    FRACTAL_SSH_KNOWN_HOSTS_FILE: Optional[Path] = None
    """Host keys that SSH connections trust (slurm_ssh); unset: the server account's ~/.ssh/known_hosts."""

    FRACTAL_TASKS_PYTHON_DEFAULT_VERSION: Optional[
        Literal["3.9", "3.10", "3.11", "3.12"]
    ] = None
    FRACTAL_TASKS_PYTHON_3_9: Optional[str] = None
    FRACTAL_TASKS_PYTHON_3_10: Optional[str] = None
    FRACTAL_TASKS_PYTHON_3_11: Optional[str] = None
    FRACTAL_TASKS_PYTHON_3_12: Optional[str] = None

    FRACTAL_API_SUBMIT_RATE_LIMIT: int = 2
    FRACTAL_RUNNER_TASKS_INCLUDE_IMAGE: str = (
        "Copy OME-Zarr structure;Convert Metadata Components from 2D to 3D"
    )
    FRACTAL_API_V1_MODE: Literal["include", "include_read_only", "exclude"] = "include"
    FRACTAL_MAX_PIP_VERSION: str = "24.0"
    FRACTAL_VIEWER_AUTHORIZATION_SCHEME: Literal[
        "none", "viewer-paths", "users-folders"
    ] = "none"
    FRACTAL_VIEWER_BASE_FOLDER: Optional[str] = None

    @model_validator(mode="before")
    @classmethod
    def _choose_tasks_pythons(cls, values: dict) -> dict:
        """Apply the `FRACTAL_TASKS_PYTHON_*` rules.

        Each interpreter must be absolute. With a default version, its
        interpreter must be set; without one, the server's own Python becomes
        the default and the only interpreter available.
        """
        for version in TASKS_PYTHON_VERSIONS:
            key = tasks_python_key(version)
            value = values.get(key)
            if value is not None and not Path(value).is_absolute():
                raise ValueError(f"Non-absolute value {key}={value}")
        default_version = values.get("FRACTAL_TASKS_PYTHON_DEFAULT_VERSION")
        if default_version is not None:
            key = tasks_python_key(str(default_version))
            if str(default_version) in TASKS_PYTHON_VERSIONS and values.get(key) is None:
                raise ValueError(
                    f"FRACTAL_TASKS_PYTHON_DEFAULT_VERSION={default_version} "
                    f"but {key}=None."
                )
            return values
        own_version = f"{sys.version_info.major}.{sys.version_info.minor}"
        values = dict(values, FRACTAL_TASKS_PYTHON_DEFAULT_VERSION=own_version)
        for version in TASKS_PYTHON_VERSIONS:
            key = tasks_python_key(version)
            if version == own_version:
                values[key] = sys.executable
            else:
                if values.get(key) is not None:
                    logger.info(
                        "Setting %s to None (given: %s), because "
                        "FRACTAL_TASKS_PYTHON_DEFAULT_VERSION was not set.",
                        key,
                        values[key],
                    )
                values[key] = None
        return values

    @field_validator("FRACTAL_TASKS_DIR", "FRACTAL_RUNNER_WORKING_BASE_DIR", "FRACTAL_SSH_KNOWN_HOSTS_FILE")
    @classmethod
    def _make_absolute(cls, value: Optional[Path], info) -> Optional[Path]:
        if value is None or value.is_absolute():
            return value
        absolute = value.resolve()
        logger.warning(
            '%s="%s" is not an absolute path; converting it to "%s"',
            info.field_name,
            value,
            absolute,
        )
        return absolute

    @field_validator("FRACTAL_SLURM_WORKER_PYTHON")
    @classmethod
    def _check_worker_python(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not Path(value).is_absolute():
            raise ValueError(f"Non-absolute value for FRACTAL_SLURM_WORKER_PYTHON={value}")
        return value

    @field_validator("FRACTAL_LOGGING_LEVEL", mode="before")
    @classmethod
    def _accept_level_names(cls, value):
        """Accept `DEBUG`, `INFO`, ... besides the numeric levels."""
        if isinstance(value, str):
            level = logging.getLevelName(value.strip().upper())
            if isinstance(level, int):
                return level
        return value

    @field_validator("POSTGRES_PORT")
    @classmethod
    def _check_port(cls, value: str) -> str:
        if not value.isdigit():
            raise ValueError(f"POSTGRES_PORT must be a port number (given '{value}')")
        return value

    def check(self, require_database: bool = True) -> None:
        """Start-up checks that do not depend on the runner backend."""
        if not self.JWT_SECRET_KEY:
            raise FractalConfigurationError("JWT_SECRET_KEY cannot be None")
        if not self.FRACTAL_TASKS_DIR:
            raise FractalConfigurationError("FRACTAL_TASKS_DIR cannot be None")
        if self.FRACTAL_VIEWER_AUTHORIZATION_SCHEME == "users-folders":
            base = self.FRACTAL_VIEWER_BASE_FOLDER
            if base is None:
                raise FractalConfigurationError(
                    "FRACTAL_VIEWER_BASE_FOLDER is required when "
                    "FRACTAL_VIEWER_AUTHORIZATION_SCHEME=users-folders"
                )
            if not Path(base).is_absolute():
                raise FractalConfigurationError(
                    f"Non-absolute value for FRACTAL_VIEWER_BASE_FOLDER={base}"
                )
        if require_database and not self.POSTGRES_DB:
            raise FractalConfigurationError("POSTGRES_DB cannot be None.")
        if not self.FRACTAL_RUNNER_WORKING_BASE_DIR:
            raise FractalConfigurationError(
                "FRACTAL_RUNNER_WORKING_BASE_DIR cannot be None."
            )

    def get_sanitized(self) -> dict:
        """All settings, with possibly-secret values replaced by `***`."""

        def must_hide(key: str) -> bool:
            upper = key.upper()
            return not upper.startswith("FRACTAL") or any(
                word in upper for word in ("PASSWORD", "SECRET", "PWD", "TOKEN")
            )

        return {
            key: "***" if must_hide(key) else value
            for key, value in self.model_dump(mode="json").items()
        }


def collect_oauth_clients(environ: Mapping[str, str]) -> list[OAuthClientConfig]:
    """One client per `<NAME>` found in the `OAUTH_<NAME>_*` variables."""
    names = sorted({key.split("_")[1] for key in environ if key.startswith("OAUTH_")} - {""})
    clients = []
    for name in names:
        prefix = f"OAUTH_{name}"
        for required in ("CLIENT_ID", "CLIENT_SECRET"):
            if not environ.get(f"{prefix}_{required}"):
                raise FractalConfigurationError(f"Missing {prefix}_{required}")
        endpoint = environ.get(f"{prefix}_OIDC_CONFIGURATION_ENDPOINT")
        if name not in OAUTH_PROVIDERS_WITHOUT_DISCOVERY and not endpoint:
            raise FractalConfigurationError(
                f"Missing {prefix}_OIDC_CONFIGURATION_ENDPOINT"
            )
        clients.append(
            OAuthClientConfig(
                CLIENT_NAME=name,
                CLIENT_ID=environ[f"{prefix}_CLIENT_ID"],
                CLIENT_SECRET=environ[f"{prefix}_CLIENT_SECRET"],
                OIDC_CONFIGURATION_ENDPOINT=endpoint,
                REDIRECT_URL=environ.get(f"{prefix}_REDIRECT_URL"),
            )
        )
    return clients


def read_environment(env_file: Optional[Path] = None) -> dict[str, str]:
    """The process environment on top of the env file (the environment wins)."""
    env_file = env_file or Path.cwd() / ENV_FILE_NAME
    merged = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    merged.update(os.environ)
    return merged


def settings_from(environ: Mapping[str, str]) -> Settings:
    """Validate the variables of `environ`; unknown variables are ignored."""
    values = {key: environ[key] for key in Settings.model_fields if key in environ}
    values.pop("OAUTH_CLIENTS_CONFIG", None)
    try:
        settings = Settings.model_validate(values)
    except ValidationError as error:
        raise FractalConfigurationError(describe_first_error(error, values)) from None
    return settings.model_copy(
        update={"OAUTH_CLIENTS_CONFIG": collect_oauth_clients(environ)}
    )


def describe_first_error(error: ValidationError, values: Mapping[str, str]) -> str:
    """One line for the first problem pydantic found.

    Messages of our own validators already name the variable; type errors
    get the variable name and the given value added.
    """
    first = error.errors()[0]
    if first["type"] == "value_error":
        return first["msg"].removeprefix("Value error, ")
    name = str(first["loc"][0])
    given = values.get(name)
    suffix = "" if given is None else f" (given {given!r})"
    return f"{name}: {first['msg']}{suffix}"
