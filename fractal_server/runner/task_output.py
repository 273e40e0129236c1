"""What tasks write into their `--out-json` file, validated and merged."""
import json
from pathlib import Path
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from fractal_server.runner.errors import JobExecutionError
from fractal_server.schemas.filters import Filters
from fractal_server.schemas.validators import UrlStr, clean_keys


def _scalar_or_null(values: dict[str, Any]) -> dict[str, Any]:
    for key, value in values.items():
        if value is not None and not isinstance(value, (int, float, str, bool)):
            raise ValueError(f"Attribute {key} must be a scalar or null (given {value!r})")
    return clean_keys(values)


class ImageUpdate(BaseModel):
    zarr_url: UrlStr
    origin: Optional[UrlStr] = None
    attributes: Annotated[dict[str, Any], AfterValidator(_scalar_or_null)] = {}
    types: dict[str, bool] = {}


class TaskOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_list_updates: list[ImageUpdate] = []
    image_list_removals: list[UrlStr] = []
    filters: Filters = Filters()


class ParallelizationItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    zarr_url: UrlStr
    init_args: dict[str, Any] = {}


class InitTaskOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parallelization_list: list[ParallelizationItem] = []


def read_output(path: Path, model: type[BaseModel], what: str = "task output"):
    """The validated content of an out file; a missing or `{}` file is empty output.

    Invalid JSON is an unexpected error (ValueError); content that does not
    fit `model` is a JobExecutionError.
    """
    if not path.exists():
        return model()
    data = json.loads(path.read_text())
    if data == {}:
        return model()
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise JobExecutionError(
            f"Validation of {what} failed.\nOriginal error: {error}\nOriginal data: {data}."
        ) from None


def merge_outputs(outputs: list[TaskOutput]) -> TaskOutput:
    """One output for a parallel phase: updates and removals concatenated.

    Every call must report the same filters.
    """
    updates: list[ImageUpdate] = []
    seen: set[str] = set()
    removals: list[str] = []
    filters: Optional[Filters] = None
    for output in outputs:
        for update in output.image_list_updates:
            key = update.model_dump_json()
            if key not in seen:
                seen.add(key)
                updates.append(update)
        removals.extend(output.image_list_removals)
        if filters is not None and output.filters != filters:
            raise ValueError(f"current_new_filters={output.filters} but last_new_filters={filters}")
        filters = output.filters
    return TaskOutput(
        image_list_updates=updates,
        image_list_removals=removals,
        filters=filters or Filters(),
    )


def deduplicate(items: list[ParallelizationItem]) -> list[ParallelizationItem]:
    seen: set[str] = set()
    unique = []
    for item in items:
        key = item.model_dump_json()
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique
