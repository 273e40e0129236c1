"""Request and response shapes of jobs."""
from enum import Enum
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BaseModel, StrictStr, ValidationInfo, field_validator

from fractal_server.http.timestamps import Timestamp
from fractal_server.schemas.tasks import AwareDatetime
from fractal_server.schemas.validators import NonEmptyStr, QueryModel, RowId, StrictApiModel


class JobStatus(str, Enum):
    SUBMITTED = "submitted"
    DONE = "done"
    FAILED = "failed"


def _not_negative(value: Optional[int], name: str) -> Optional[int]:
    if value is not None and value < 0:
        raise ValueError(f"{name} cannot be negative (given: {value})")
    return value


class JobCreate(StrictApiModel):
    first_task_index: Annotated[Optional[int], AfterValidator(lambda v: _not_negative(v, "first_task_index"))] = None
    last_task_index: Annotated[Optional[int], AfterValidator(lambda v: _not_negative(v, "last_task_index"))] = None
    slurm_account: Optional[StrictStr] = None
    worker_init: NonEmptyStr = None

    @field_validator("last_task_index")
    @classmethod
    def _not_before_first(cls, last: Optional[int], info: ValidationInfo) -> Optional[int]:
        first = info.data.get("first_task_index")
        if first is not None and last is not None and first > last:
            raise ValueError(f"first_task_index={first} cannot be larger than last_task_index={last}")
        return last


class JobRead(BaseModel):
    id: int
    project_id: Optional[int]
    project_dump: dict[str, Any]
    user_email: str
    slurm_account: Optional[str]
    workflow_id: Optional[int]
    workflow_dump: dict[str, Any]
    dataset_id: Optional[int]
    dataset_dump: dict[str, Any]
    start_timestamp: Timestamp
    end_timestamp: Optional[Timestamp]
    status: JobStatus
    log: Optional[str]
    working_dir: Optional[str]
    working_dir_user: Optional[str]
    first_task_index: int
    last_task_index: int
    worker_init: Optional[str]


class JobSubmitQuery(QueryModel):
    workflow_id: RowId
    dataset_id: RowId


class LogQuery(QueryModel):
    log: bool = True


class TmpLogsQuery(QueryModel):
    show_tmp_logs: bool = False


class StatusQuery(QueryModel):
    dataset_id: RowId
    workflow_id: RowId


class WorkflowTasksStatus(BaseModel):
    status: dict[str, str]


class AdminJobUpdate(StrictApiModel):
    status: JobStatus


class AdminJobListQuery(QueryModel):
    id: Optional[RowId] = None
    user_id: Optional[RowId] = None
    project_id: Optional[RowId] = None
    dataset_id: Optional[RowId] = None
    workflow_id: Optional[RowId] = None
    status: Optional[JobStatus] = None
    start_timestamp_min: AwareDatetime = None
    start_timestamp_max: AwareDatetime = None
    end_timestamp_min: AwareDatetime = None
    end_timestamp_max: AwareDatetime = None
    log: bool = True
