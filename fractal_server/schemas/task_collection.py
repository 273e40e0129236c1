"""Request bodies of the task collectors (`api-v2.md` 10)."""
from typing import Literal, Optional

from pydantic import field_validator, model_validator

from fractal_server.http.validation_errors import root_error
from fractal_server.schemas.validators import (
    NonEmptyNameStr,
    NonEmptyStr,
    OptionalNonEmptyStr,
    StrictApiModel,
    clean_keys,
    no_forbidden_chars,
    nonempty,
)
from fractal_server.task_collection.manifest import Manifest
from fractal_server.task_collection.packages import (
    check_extras,
    check_package_name,
    check_version,
    is_wheel_reference,
)


class TaskCollectPip(StrictApiModel):
    """TaskCollectPipV2: a package of the index (optionally a version), or an absolute wheel path."""

    package: NonEmptyStr
    package_version: NonEmptyStr = None
    package_extras: NonEmptyStr = None
    python_version: Optional[Literal["3.9", "3.10", "3.11", "3.12"]] = None
    pinned_package_versions: Optional[dict[str, str]] = None

    @field_validator("package")
    @classmethod
    def _package(cls, value: str) -> str:
        no_forbidden_chars(value, "package")
        if is_wheel_reference(value):
            if not value.endswith(".whl"):
                raise ValueError(f"Local-package path must be a wheel file (given {value}).")
            if not value.startswith("/"):
                raise ValueError(f"Local-package path must be absolute: (given {value}).")
            return value
        return check_package_name(value)

    @field_validator("package_version")
    @classmethod
    def _version(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        return check_version(no_forbidden_chars(value, "package_version"))

    @field_validator("package_extras")
    @classmethod
    def _extras(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        return check_extras(no_forbidden_chars(value, "package_extras"))

    @field_validator("pinned_package_versions")
    @classmethod
    def _pins(cls, value: Optional[dict[str, str]]) -> Optional[dict[str, str]]:
        if value is None:
            return None
        pins = clean_keys(value)
        for name, version in pins.items():
            no_forbidden_chars(name, "pinned_package_versions")
            no_forbidden_chars(version, "pinned_package_versions")
            check_package_name(name, "pinned package name")
            check_version(version, f"pinned version of '{name}'")
        return pins

    @model_validator(mode="after")
    def _no_version_for_wheels(self):
        if self.is_wheel and self.package_version is not None:
            raise root_error("Cannot provide package version when package is a wheel file.")
        return self

    @property
    def is_wheel(self) -> bool:
        return is_wheel_reference(self.package)


class TaskCollectCustom(StrictApiModel):
    """TaskCollectCustomV2: tasks of a manifest, run by an existing interpreter."""

    manifest: Manifest
    python_interpreter: NonEmptyStr
    label: NonEmptyNameStr
    package_root: Optional[str] = None
    package_name: Optional[str] = None
    version: OptionalNonEmptyStr = None

    @field_validator("python_interpreter")
    @classmethod
    def _interpreter(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"Python interpreter path must be absolute: (given {value}).")
        return value

    @field_validator("package_root")
    @classmethod
    def _package_root(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        value = nonempty(value, "package_root")
        if not value.startswith("/"):
            raise ValueError(f"'package_root' must be an absolute path: (given {value}).")
        return value

    @field_validator("package_name")
    @classmethod
    def _package_name(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        value = no_forbidden_chars(value, "package_name").strip().replace(" ", "")
        return check_package_name(value)

    @model_validator(mode="after")
    def _one_way_to_the_package(self):
        if (self.package_root is None) == (self.package_name is None):
            raise root_error("One and only one must be set between 'package_root' and 'package_name'")
        return self
