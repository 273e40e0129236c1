"""Request and response shapes of tasks, task groups and activities (`api-v2.md` 1.3, 8, 9, 12)."""
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, Optional

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    HttpUrl,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fractal_server.http.timestamps import Timestamp
from fractal_server.http.validation_errors import root_error
from fractal_server.schemas.validators import (
    CleanKeysDict,
    NonEmptyNameStr,
    NonEmptyStr,
    OptionalNonEmptyStr,
    QueryModel,
    RowId,
    StrictApiModel,
    clean_keys,
    no_forbidden_chars,
    nonempty,
    unique_items,
)


class TaskRead(BaseModel):
    """TaskReadV2."""

    id: int
    name: str
    type: Literal["parallel", "non_parallel", "compound"]
    source: Optional[str] = None
    version: Optional[str] = None
    command_non_parallel: Optional[str] = None
    command_parallel: Optional[str] = None
    meta_parallel: dict[str, Any] = {}
    meta_non_parallel: dict[str, Any] = {}
    args_schema_non_parallel: Optional[dict[str, Any]] = None
    args_schema_parallel: Optional[dict[str, Any]] = None
    args_schema_version: Optional[str] = None
    docs_info: Optional[str] = None
    docs_link: Optional[str] = None
    input_types: dict[str, bool] = {}
    output_types: dict[str, bool] = {}
    taskgroupv2_id: Optional[int] = None
    category: Optional[str] = None
    modality: Optional[str] = None
    authors: Optional[str] = None
    tags: list[str] = []

    @field_validator("meta_parallel", "meta_non_parallel", "input_types", "output_types", mode="before")
    @classmethod
    def _empty_dict_when_unset(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("tags", mode="before")
    @classmethod
    def _empty_list_when_unset(cls, value: Any) -> Any:
        return [] if value is None else value


# --- Task creation and update, task groups, activities (sections 8, 9, 12) ---

_HTTP_URL = TypeAdapter(HttpUrl)


def _http_url(value: Optional[str]) -> Optional[str]:
    """A valid http(s) URL, kept as given (no normalisation)."""
    if value is None:
        return None
    try:
        _HTTP_URL.validate_python(value)
    except ValidationError:
        raise PydanticCustomError("url_scheme", "invalid or missing URL scheme") from None
    return value


def _tags(values: list[str]) -> list[str]:
    cleaned = [nonempty(tag, f"tags[{index}]") for index, tag in enumerate(values)]
    return unique_items(cleaned, "tags")


def _null_is_an_empty_error(value: Any) -> Any:
    """The reference answers an explicit null here with an empty message."""
    if value is None:
        raise ValueError("")
    return value


TypesMap = Annotated[dict[str, bool], AfterValidator(clean_keys)]
Tags = Annotated[list[str], AfterValidator(_tags)]
HttpUrlStr = Annotated[Optional[str], AfterValidator(_http_url)]


class TaskCreate(StrictApiModel):
    """TaskCreateV2: body of `POST /api/v2/task/`."""

    name: NonEmptyNameStr
    command_non_parallel: NonEmptyStr = None
    command_parallel: NonEmptyStr = None
    meta_non_parallel: Optional[CleanKeysDict] = None
    meta_parallel: Optional[CleanKeysDict] = None
    version: NonEmptyStr = None
    args_schema_non_parallel: Optional[CleanKeysDict] = None
    args_schema_parallel: Optional[CleanKeysDict] = None
    args_schema_version: NonEmptyStr = None
    docs_info: Optional[str] = None
    docs_link: HttpUrlStr = None
    input_types: TypesMap = {}
    output_types: TypesMap = {}
    category: OptionalNonEmptyStr = None
    modality: OptionalNonEmptyStr = None
    authors: OptionalNonEmptyStr = None
    tags: Tags = []

    @model_validator(mode="after")
    def _commands(self):
        commands = [c for c in (self.command_non_parallel, self.command_parallel) if c is not None]
        if not commands:
            raise root_error("Task must have at least one valid command (parallel and/or non_parallel)")
        for command in commands:
            try:
                no_forbidden_chars(command, "Command")
            except ValueError as error:
                raise root_error(str(error)) from None
        return self

    @property
    def task_type(self) -> str:
        if self.command_non_parallel is None:
            return "parallel"
        if self.command_parallel is None:
            return "non_parallel"
        return "compound"


class TaskUpdate(StrictApiModel):
    """TaskUpdateV2: body of `PATCH /api/v2/task/{id}/`; only present keys are applied."""

    command_parallel: NonEmptyStr = None
    command_non_parallel: NonEmptyStr = None
    input_types: Annotated[TypesMap, BeforeValidator(_null_is_an_empty_error)] = None
    output_types: Annotated[TypesMap, BeforeValidator(_null_is_an_empty_error)] = None
    category: OptionalNonEmptyStr = None
    modality: OptionalNonEmptyStr = None
    authors: OptionalNonEmptyStr = None
    tags: Tags = None


class TaskCreateQuery(QueryModel):
    """Where a new task group goes: `private` and `user_group_id` (section 0.6)."""

    private: bool = False
    user_group_id: Optional[RowId] = None


class TaskListQuery(QueryModel):
    args_schema: bool = True
    category: Optional[str] = None
    modality: Optional[str] = None
    author: Optional[str] = None


def without_args_schemas(task: TaskRead) -> TaskRead:
    return task.model_copy(update={"args_schema_parallel": None, "args_schema_non_parallel": None})


class TaskGroupRead(BaseModel):
    """TaskGroupReadV2."""

    id: int
    task_list: list[TaskRead]
    user_id: int
    user_group_id: Optional[int] = None
    origin: Literal["pypi", "wheel-file", "other"]
    pkg_name: str
    version: Optional[str] = None
    python_version: Optional[str] = None
    path: Optional[str] = None
    venv_path: Optional[str] = None
    wheel_path: Optional[str] = None
    pip_freeze: Optional[str] = None
    pip_extras: Optional[str] = None
    pinned_package_versions: dict[str, str] = {}
    venv_size_in_kB: Optional[int] = None
    venv_file_number: Optional[int] = None
    active: bool
    timestamp_created: Timestamp
    timestamp_last_used: Timestamp

    @field_validator("pinned_package_versions", mode="before")
    @classmethod
    def _empty_dict_when_unset(cls, value: Any) -> Any:
        return {} if value is None else value


def task_group_read(task_group: Any, args_schema: bool = True) -> TaskGroupRead:
    """The API shape of a task group row; `args_schema=False` nulls the tasks' schemas."""
    read = TaskGroupRead.model_validate(task_group, from_attributes=True)
    if not args_schema:
        read.task_list = [without_args_schemas(task) for task in read.task_list]
    return read


class TaskGroupUpdate(StrictApiModel):
    """Body of the task-group PATCH endpoints (user and admin)."""

    user_group_id: Optional[RowId] = None


class TaskGroupListQuery(QueryModel):
    only_active: bool = False
    only_owner: bool = False
    args_schema: bool = True


class ActivityStatus(str, Enum):
    PENDING = "pending"
    ONGOING = "ongoing"
    FAILED = "failed"
    OK = "OK"


class ActivityAction(str, Enum):
    COLLECT = "collect"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"


class TaskGroupOrigin(str, Enum):
    PYPI = "pypi"
    WHEEL_FILE = "wheel-file"
    OTHER = "other"


def _timezone_required(value: Optional[datetime]) -> Optional[datetime]:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"timestamp={value!r} is naive. You must provide a timezone.")
    return value


AwareDatetime = Annotated[Optional[datetime], AfterValidator(_timezone_required)]
"""A query timestamp that must carry a timezone (naive -> 422)."""


class TaskGroupActivityRead(BaseModel):
    """TaskGroupActivityV2Read."""

    id: int
    user_id: int
    taskgroupv2_id: Optional[int] = None
    timestamp_started: Timestamp
    timestamp_ended: Optional[Timestamp] = None
    pkg_name: str
    version: str
    status: Literal["pending", "ongoing", "failed", "OK"]
    action: Literal["collect", "deactivate", "reactivate"]
    log: Optional[str] = None


class ActivityListQuery(QueryModel):
    task_group_activity_id: Optional[RowId] = None
    taskgroupv2_id: Optional[RowId] = None
    pkg_name: Optional[str] = None
    status: Optional[ActivityStatus] = None
    action: Optional[ActivityAction] = None
    timestamp_started_min: AwareDatetime = None


class AdminActivityListQuery(ActivityListQuery):
    user_id: Optional[RowId] = None


class AdminTaskGroupListQuery(QueryModel):
    user_id: Optional[RowId] = None
    user_group_id: Optional[RowId] = None
    private: Optional[bool] = None
    active: Optional[bool] = None
    pkg_name: Optional[str] = None
    origin: Optional[TaskGroupOrigin] = None
    timestamp_last_used_min: AwareDatetime = None
    timestamp_last_used_max: AwareDatetime = None


class AdminTaskListQuery(QueryModel):
    id: Optional[RowId] = None
    source: Optional[str] = None
    version: Optional[str] = None
    name: Optional[str] = None
    max_number_of_results: int = 25
    category: Optional[str] = None
    modality: Optional[str] = None
    author: Optional[str] = None


class TaskMinimal(BaseModel):
    id: int
    name: str
    type: str
    taskgroupv2_id: Optional[int] = None
    command_non_parallel: Optional[str] = None
    command_parallel: Optional[str] = None
    source: Optional[str] = None
    version: Optional[str] = None


class ProjectUser(BaseModel):
    id: int
    email: str


class TaskRelationship(BaseModel):
    workflow_id: int
    workflow_name: str
    project_id: int
    project_name: str
    project_users: list[ProjectUser]


class TaskInfo(BaseModel):
    """One item of `GET /admin/v2/task/`."""

    task: TaskMinimal
    relationships: list[TaskRelationship]
