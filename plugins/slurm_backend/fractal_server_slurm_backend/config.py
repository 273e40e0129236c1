"""`FRACTAL_SLURM_CONFIG_FILE`: SLURM options and batching limits.

The file is read again for every task, so that an admin's edits apply to the
next task without a restart. Every value that ends up in a submission script
is checked here to be a single line.
"""

import json
import re
from pathlib import Path
from typing import Annotated, Optional, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from fractal_server.config.errors import FractalConfigurationError

_MEMORY = re.compile(r"([0-9]+)([MGT]?)")
_MEMORY_FACTORS = {"": 1, "M": 1, "G": 1000, "T": 1000 * 1000}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SlurmConfigError(ValueError):
    """SLURM options of a task that cannot work; the task's job fails with it."""


def memory_in_mb(value: Union[int, str]) -> int:
    """`93` / `"93"` / `"93M"` -> 93, `"2G"` -> 2000, `"1T"` -> 1000000; never 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _MEMORY.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"invalid specification of memory requirements {value!r} "
            "(valid examples: 93, 71M, 93G, 71T)"
        )
    return int(match.group(1)) * _MEMORY_FACTORS[match.group(2)]


def single_line(value: str) -> str:
    """Values written into submission scripts must not start a new line."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"must be a single line: {value!r}")
    return value


def _not_a_boolean(value):
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not a boolean")
    return value


def _relative_path(value: str) -> str:
    if value.startswith("/"):
        raise ValueError(f"must be a path relative to the user's cache folder, not {value!r}")
    return value


def _environment_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid environment variable name")
    return value


Line = Annotated[str, AfterValidator(single_line)]
Count = Annotated[int, BeforeValidator(_not_a_boolean), Field(gt=0)]
Megabytes = Annotated[int, BeforeValidator(memory_in_mb)]
EnvironmentName = Annotated[str, AfterValidator(_environment_name)]
RelativePath = Annotated[str, AfterValidator(single_line), AfterValidator(_relative_path)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlurmOptions(_Strict):
    """Options of `default_slurm_config` and `gpu_slurm_config`; `mem` in MB per call."""

    partition: Optional[Line] = None
    cpus_per_task: Optional[Count] = None
    mem: Optional[Megabytes] = None
    constraint: Optional[Line] = None
    gres: Optional[Line] = None
    gpus: Optional[Line] = None
    time: Optional[Line] = None
    account: Optional[Line] = None
    extra_lines: Optional[list[Line]] = None
    pre_submission_commands: Optional[list[Line]] = None


class BatchingConfig(_Strict):
    """Limits for grouping parallel calls into SLURM jobs (memory in MB)."""

    target_cpus_per_job: Count
    max_cpus_per_job: Count
    target_mem_per_job: Megabytes
    max_mem_per_job: Megabytes
    target_num_jobs: Count
    max_num_jobs: Count


class SlurmConfigFile(_Strict):
    default_slurm_config: SlurmOptions
    gpu_slurm_config: Optional[SlurmOptions] = None
    batching_config: BatchingConfig
    user_local_exports: Optional[dict[EnvironmentName, RelativePath]] = None

    @field_validator("user_local_exports", mode="before")
    @classmethod
    def _exports_are_an_object(cls, value):
        if value is not None and not isinstance(value, dict):
            raise ValueError("must be an object of variable names and relative paths")
        return value

    def options_for(self, needs_gpu: bool) -> SlurmOptions:
        """The file's options for a task: `gpu_slurm_config` keys set override
        the defaults when the task needs a GPU."""
        if not needs_gpu or self.gpu_slurm_config is None:
            return self.default_slurm_config
        overrides = self.gpu_slurm_config.model_dump(exclude_unset=True)
        return self.default_slurm_config.model_copy(update=overrides)


def _one_line_summary(error: ValidationError) -> str:
    problems = []
    for detail in error.errors():
        location = ".".join(str(part) for part in detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return "; ".join(problems)


def load_slurm_config(path: Union[str, Path]) -> SlurmConfigFile:
    """Read and validate the file; every problem becomes one line of a
    FractalConfigurationError."""
    try:
        return SlurmConfigFile.model_validate(json.loads(Path(path).read_text()))
    except (OSError, UnicodeDecodeError) as error:
        raise FractalConfigurationError(
            f"FRACTAL_SLURM_CONFIG_FILE={path} cannot be read: {error}"
        ) from None
    except json.JSONDecodeError as error:
        raise FractalConfigurationError(
            f"FRACTAL_SLURM_CONFIG_FILE={path} is not valid JSON: {error}"
        ) from None
    except ValidationError as error:
        raise FractalConfigurationError(
            f"FRACTAL_SLURM_CONFIG_FILE={path} is not a valid SLURM configuration: "
            f"{_one_line_summary(error)}"
        ) from None


def check_slurm_config_file(settings) -> None:
    """The configuration file must be set, exist and be valid."""
    backend = settings.FRACTAL_RUNNER_BACKEND
    path = settings.FRACTAL_SLURM_CONFIG_FILE
    if not path:
        raise FractalConfigurationError(
            f"Must set FRACTAL_SLURM_CONFIG_FILE when FRACTAL_RUNNER_BACKEND={backend}"
        )
    if not Path(path).exists():
        raise FractalConfigurationError(
            f"FRACTAL_RUNNER_BACKEND={backend} but FRACTAL_SLURM_CONFIG_FILE={path} not found."
        )
    load_slurm_config(path)
