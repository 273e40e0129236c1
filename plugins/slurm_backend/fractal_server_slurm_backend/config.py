"""`FRACTAL_SLURM_CONFIG_FILE`: SLURM options and batching limits."""
import json
import re
from pathlib import Path
from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from fractal_server.config.errors import FractalConfigurationError

_MEMORY = re.compile(r"([0-9]+)([MGT]?)")
_MEMORY_FACTORS = {"": 1, "M": 1, "G": 1000, "T": 1000 * 1000}


def memory_in_mb(value: Union[int, str]) -> int:
    """`93` / `"93"` / `"93M"` -> 93, `"2G"` -> 2000, `"1T"` -> 1000000."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _MEMORY.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"invalid specification of memory requirements {value!r} "
            "(valid examples: 93, 71M, 93G, 71T)"
        )
    return int(match.group(1)) * _MEMORY_FACTORS[match.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlurmOptions(_Strict):
    """Options of `default_slurm_config` and `gpu_slurm_config`; `mem` in MB."""

    partition: Optional[str] = None
    cpus_per_task: Optional[int] = None
    mem: Optional[int] = None
    constraint: Optional[str] = None
    gres: Optional[str] = None
    gpus: Optional[str] = None
    time: Optional[str] = None
    account: Optional[str] = None
    extra_lines: Optional[list[str]] = None
    pre_submission_commands: Optional[list[str]] = None

    @field_validator("mem", mode="before")
    @classmethod
    def _parse_memory(cls, value):
        return None if value is None else memory_in_mb(value)


class BatchingConfig(_Strict):
    """Limits for grouping parallel calls into SLURM jobs (memory in MB)."""

    target_cpus_per_job: int
    max_cpus_per_job: int
    target_mem_per_job: int
    max_mem_per_job: int
    target_num_jobs: int
    max_num_jobs: int

    @field_validator("target_mem_per_job", "max_mem_per_job", mode="before")
    @classmethod
    def _parse_memory(cls, value):
        return memory_in_mb(value)


class SlurmConfigFile(_Strict):
    default_slurm_config: SlurmOptions
    gpu_slurm_config: Optional[SlurmOptions] = None
    batching_config: BatchingConfig
    user_local_exports: Optional[dict[str, str]] = None


def load_slurm_config(path: Path) -> SlurmConfigFile:
    """Read and validate the file; errors are one-line configuration errors."""
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
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if location:
            message = f"{location}: {message}"
        raise FractalConfigurationError(
            f"FRACTAL_SLURM_CONFIG_FILE={path} is not a valid SLURM configuration: {message}"
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
