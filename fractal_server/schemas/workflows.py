"""Request and response shapes of workflows and workflow tasks (`api-v2.md` 1.4, 7)."""
from typing import Annotated, Any, Optional, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from fractal_server.http.timestamps import Timestamp
from fractal_server.schemas.filters import Filters
from fractal_server.schemas.projects import ProjectRead
from fractal_server.schemas.tasks import TaskRead
from fractal_server.schemas.validators import (
    ApiModel,
    CleanKeysDict,
    NonEmptyNameStr,
    OptionalNonEmptyStr,
    QueryModel,
    RowId,
    StrictApiModel,
    clean_keys,
)

RESERVED_ARGUMENTS = {"zarr_dir", "zarr_url", "zarr_urls", "init_args"}


def _no_reserved_keys(args: Optional[dict]) -> Optional[dict]:
    if args is not None:
        found = sorted(RESERVED_ARGUMENTS.intersection(args))
        if found:
            listed = ", ".join(repr(key) for key in found)
            raise ValueError(f"`args` contains the following forbidden keys: {{{listed}}}")
    return args


ArgsDict = Annotated[dict[str, Any], AfterValidator(_no_reserved_keys)]
"""Task arguments: the runner's own keys (`zarr_url`, ...) are not allowed."""

ImportedArgsDict = Annotated[dict[str, Any], AfterValidator(clean_keys), AfterValidator(_no_reserved_keys)]


# --- Workflows -------------------------------------------------------------


class WorkflowCreate(StrictApiModel):
    name: NonEmptyNameStr


def _null_is_not_iterable(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("type_error", "'NoneType' object is not iterable")
    return value


def _unique_non_negative_ids(ids: list[int]) -> list[int]:
    if any(item < 0 for item in ids):
        raise ValueError("Negative `id` in `reordered_workflowtask_ids`")
    if len(set(ids)) != len(ids):
        raise ValueError("`reordered_workflowtask_ids` has repetitions")
    return ids


class WorkflowUpdate(StrictApiModel):
    name: NonEmptyNameStr = None
    reordered_workflowtask_ids: Annotated[
        list[int], BeforeValidator(_null_is_not_iterable), AfterValidator(_unique_non_negative_ids)
    ] = None


# --- Workflow tasks --------------------------------------------------------


class WorkflowTaskCreate(StrictApiModel):
    """`order` is not accepted: new workflow tasks are always appended."""

    meta_non_parallel: Optional[CleanKeysDict] = None
    meta_parallel: Optional[CleanKeysDict] = None
    args_non_parallel: Optional[ArgsDict] = None
    args_parallel: Optional[ArgsDict] = None
    input_filters: Filters = Filters()


class WorkflowTaskUpdate(StrictApiModel):
    """Only the keys present in the body are applied; `input_filters` cannot be null."""

    meta_non_parallel: Optional[CleanKeysDict] = None
    meta_parallel: Optional[CleanKeysDict] = None
    args_non_parallel: Optional[ArgsDict] = None
    args_parallel: Optional[ArgsDict] = None
    input_filters: Filters = None


class WorkflowTaskQuery(QueryModel):
    task_id: RowId


class WorkflowTaskRead(BaseModel):
    id: int
    workflow_id: int
    order: Optional[int] = None
    meta_non_parallel: Optional[dict[str, Any]] = None
    meta_parallel: Optional[dict[str, Any]] = None
    args_non_parallel: Optional[dict[str, Any]] = None
    args_parallel: Optional[dict[str, Any]] = None
    input_filters: Filters
    task_type: str
    task_id: int
    task: TaskRead


class WorkflowTaskReadWithWarning(WorkflowTaskRead):
    warning: Optional[str] = None


class WorkflowRead(BaseModel):
    id: int
    name: str
    project_id: int
    task_list: list[WorkflowTaskRead]
    project: ProjectRead
    timestamp_created: Timestamp


class WorkflowReadWithWarnings(WorkflowRead):
    task_list: list[WorkflowTaskReadWithWarning]


# --- Export and import -----------------------------------------------------


class TaskExport(BaseModel):
    pkg_name: str
    version: Optional[str] = None
    name: str


class WorkflowTaskExport(BaseModel):
    meta_non_parallel: Optional[dict[str, Any]] = None
    meta_parallel: Optional[dict[str, Any]] = None
    args_non_parallel: Optional[dict[str, Any]] = None
    args_parallel: Optional[dict[str, Any]] = None
    input_filters: Filters
    task: TaskExport


class WorkflowExport(BaseModel):
    name: str
    task_list: list[WorkflowTaskExport]


class TaskImport(StrictApiModel):
    """A task named by package, version (null: the latest) and name."""

    pkg_name: NonEmptyNameStr
    version: OptionalNonEmptyStr = None
    name: NonEmptyNameStr

    def __str__(self) -> str:
        return f"pkg_name={self.pkg_name!r} version={self.version!r} name={self.name!r}"


class TaskImportLegacy(ApiModel):
    """A task named by its `source` (workflows exported before 2.9)."""

    source: str

    def __str__(self) -> str:
        return f"source={self.source!r}"


def _new_or_legacy_task(value: Any) -> Union[TaskImport, TaskImportLegacy]:
    """The new form if it validates, else the legacy one; else the errors of both."""
    errors: list[InitErrorDetails] = []
    for model in (TaskImport, TaskImportLegacy):
        try:
            return model.model_validate(value)
        except ValidationError as error:
            errors.extend(
                {key: item[key] for key in ("type", "loc", "input", "ctx") if key in item}
                for item in error.errors(include_url=False)
            )
    raise ValidationError.from_exception_data("task", errors)


class WorkflowTaskImport(StrictApiModel):
    meta_non_parallel: Optional[CleanKeysDict] = None
    meta_parallel: Optional[CleanKeysDict] = None
    args_non_parallel: Optional[ImportedArgsDict] = None
    args_parallel: Optional[ImportedArgsDict] = None
    input_filters: Filters = Filters()
    task: Annotated[Union[TaskImport, TaskImportLegacy], BeforeValidator(_new_or_legacy_task)]


class WorkflowImport(StrictApiModel):
    name: NonEmptyNameStr
    task_list: list[WorkflowTaskImport]
