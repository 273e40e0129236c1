"""Request and response shapes of the `/auth` tree."""
from typing import Annotated, Optional

from pydantic import (
    AfterValidator,
    BaseModel,
    EmailStr,
    Field,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fractal_server.http.timestamps import Timestamp
from fractal_server.schemas.validators import (
    ApiModel,
    NameStr,
    NonEmptyNameStr,
    OptionalAbsolutePath,
    OptionalNonEmptyNameStr,
    OptionalNonEmptyStr,
    RowId,
    StrictApiModel,
    absolute_path,
    no_forbidden_chars,
    nonempty,
    unique_items,
    unique_list_validator,
)


class OAuthAccountRead(BaseModel):
    id: int
    account_email: str
    oauth_name: str


class UserRead(BaseModel):
    id: int
    email: str
    is_active: bool
    is_superuser: bool
    is_verified: bool
    username: Optional[str]
    group_ids_names: Optional[list[tuple[int, str]]]
    oauth_accounts: list[OAuthAccountRead]


class UserSettingsRead(BaseModel):
    id: int
    ssh_host: Optional[str]
    ssh_username: Optional[str]
    ssh_private_key_path: Optional[str]
    ssh_tasks_dir: Optional[str]
    ssh_jobs_dir: Optional[str]
    slurm_user: Optional[str]
    slurm_accounts: list[str]
    project_dir: Optional[str]


class UserSettingsReadStrict(BaseModel):
    slurm_user: Optional[str]
    slurm_accounts: list[str]
    ssh_username: Optional[str]
    project_dir: Optional[str]


class UserGroupRead(BaseModel):
    id: int
    name: str
    timestamp_created: Timestamp
    user_ids: Optional[list[int]]
    viewer_paths: list[str]


class LoginForm(ApiModel):
    username: str
    password: str
    grant_type: Optional[str] = None
    scope: str = ""
    client_id: Optional[str] = None
    client_secret: Optional[str] = None

    @model_validator(mode="before")
    @classmethod
    def _empty_means_missing(cls, data):
        """An empty form field counts as not sent (`username=` -> `field required`)."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value != ""}
        return data


class BearerToken(BaseModel):
    access_token: str
    token_type: str


class UserCreate(ApiModel):
    """Registration body; the role flags are accepted and ignored."""

    email: EmailStr
    password: str
    username: OptionalNonEmptyNameStr = None
    is_active: Optional[bool] = None
    is_superuser: Optional[bool] = None
    is_verified: Optional[bool] = None


class UserUpdate(StrictApiModel):
    password: Optional[str] = None
    email: Optional[EmailStr] = None
    is_active: Optional[bool] = None
    is_superuser: Optional[bool] = None
    is_verified: Optional[bool] = None
    username: NonEmptyNameStr = None

    @field_validator("password", "email", "is_active", "is_superuser", "is_verified", mode="before")
    @classmethod
    def _no_null(cls, value, info: ValidationInfo):
        if value is None:
            raise ValueError(f"Cannot set {info.field_name}=None")
        return value


class EmptyBody(StrictApiModel):
    """`PATCH /auth/current-user/` accepts nothing: users cannot change themselves."""


class UserSetGroups(StrictApiModel):
    group_ids: Annotated[list[RowId], Field(min_length=1), unique_list_validator()]


class UserSettingsUpdateStrict(StrictApiModel):
    """What users may change in their own settings (items are not stripped)."""

    slurm_accounts: Annotated[list[StrictStr], unique_list_validator()] = None

    @field_validator("slurm_accounts", mode="before")
    @classmethod
    def _null_is_an_error(cls, value):
        if value is None:
            raise ValueError("Cannot set slurm_accounts=None")
        return value


class UserSettingsUpdate(StrictApiModel):
    """What a superuser may change in anyone's settings (null clears a value)."""

    ssh_host: OptionalNonEmptyStr = None
    ssh_username: OptionalNonEmptyStr = None
    ssh_private_key_path: OptionalAbsolutePath = None
    ssh_tasks_dir: OptionalAbsolutePath = None
    ssh_jobs_dir: OptionalAbsolutePath = None
    slurm_user: OptionalNonEmptyStr = None
    project_dir: Optional[str] = None
    slurm_accounts: Optional[list[StrictStr]] = None

    @field_validator("project_dir")
    @classmethod
    def _project_dir(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        return absolute_path(no_forbidden_chars(value, "project_dir"), "project_dir")

    @field_validator("slurm_accounts", mode="before")
    @classmethod
    def _accounts_not_null(cls, value):
        if value is None:
            raise ValueError("Cannot set slurm_accounts=None")
        return value

    @field_validator("slurm_accounts")
    @classmethod
    def _accounts(cls, values: list[str]) -> list[str]:
        cleaned = [nonempty(value, f"slurm_accounts[{i}]") for i, value in enumerate(values)]
        return unique_items(cleaned, "slurm_accounts")


def _viewer_paths(values: list[str]) -> list[str]:
    cleaned = [absolute_path(value, f"viewer_paths[{i}]") for i, value in enumerate(values)]
    return unique_items(cleaned, "viewer_paths")


class UserGroupCreate(StrictApiModel):
    name: NameStr
    viewer_paths: Annotated[list[str], AfterValidator(_viewer_paths)] = []


class UserGroupUpdate(StrictApiModel):
    viewer_paths: Annotated[list[str], AfterValidator(_viewer_paths)] = None

    @field_validator("viewer_paths", mode="before")
    @classmethod
    def _not_null(cls, value):
        if value is None:
            raise PydanticCustomError("type_error", "'NoneType' object is not iterable")
        return value


class GroupIdsNamesQuery(BaseModel):
    group_ids_names: bool = False


class GroupIdsNamesDefaultTrueQuery(BaseModel):
    group_ids_names: bool = True


class UserIdsQuery(BaseModel):
    user_ids: bool = False
