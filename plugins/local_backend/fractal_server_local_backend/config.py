"""`FRACTAL_LOCAL_CONFIG_FILE`: options of the local backends."""
import json
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, ValidationError

from fractal_server.config.errors import FractalConfigurationError


class LocalBackendConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parallel_tasks_per_job: Optional[int] = None


def check_local_settings(settings) -> None:
    """The start-up check: a configured file must exist."""
    path = settings.FRACTAL_LOCAL_CONFIG_FILE
    if path is not None and not Path(path).exists():
        raise FractalConfigurationError(
            f"FRACTAL_RUNNER_BACKEND={settings.FRACTAL_RUNNER_BACKEND} but "
            f"FRACTAL_LOCAL_CONFIG_FILE={path} not found."
        )


def load_local_config(path: Optional[Path]) -> LocalBackendConfig:
    """Read the file each time a job needs it, so edits apply without restart."""
    if path is None:
        return LocalBackendConfig()
    try:
        return LocalBackendConfig.model_validate(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError, ValidationError) as error:
        raise ValueError(f"Invalid FRACTAL_LOCAL_CONFIG_FILE={path}: {error}") from None
