"""The task manifest of a package, and the tasks it describes (`task-collection.md` 5-6).

A package ships `__FRACTAL_MANIFEST__.json` (manifest version 2) next to
its task scripts. `Manifest` validates it; `tasks_from_manifest` turns its
entries into task-creation bodies, validated by the same rules as
`POST /api/v2/task/`.
"""
import json
from pathlib import PurePosixPath
from typing import Any, Optional

from pydantic import ValidationError, field_validator, model_validator

from fractal_server.http.validation_errors import root_error, to_v1_errors
from fractal_server.task_collection.hosts import TaskHost, TaskHostError
from fractal_server.schemas.tasks import HttpUrlStr, TaskCreate
from fractal_server.schemas.validators import ApiModel, NameStr, OptionalNonEmptyStr


class ManifestError(ValueError):
    """The manifest, or a task built from it, is not valid."""


class TaskManifest(ApiModel):
    """One entry of `task_list` (unknown keys are ignored)."""

    name: NameStr
    executable_non_parallel: Optional[str] = None
    executable_parallel: Optional[str] = None
    input_types: dict[str, bool] = {}
    output_types: dict[str, bool] = {}
    meta_non_parallel: dict[str, Any] = {}
    meta_parallel: dict[str, Any] = {}
    args_schema_non_parallel: Optional[dict[str, Any]] = None
    args_schema_parallel: Optional[dict[str, Any]] = None
    docs_info: Optional[str] = None
    docs_link: HttpUrlStr = None
    category: Optional[str] = None
    modality: Optional[str] = None
    tags: list[str] = []

    @model_validator(mode="after")
    def _executables(self):
        if self.executable_non_parallel is None and self.executable_parallel is None:
            raise root_error(
                f"Task '{self.name}': `executable_non_parallel` and `executable_parallel` "
                "cannot be both None."
            )
        for kind in ("non_parallel", "parallel"):
            if getattr(self, f"executable_{kind}") is not None:
                continue
            if getattr(self, f"meta_{kind}"):
                raise root_error(f"Task '{self.name}': `meta_{kind}` must be empty without `executable_{kind}`.")
            if getattr(self, f"args_schema_{kind}") is not None:
                raise root_error(
                    f"Task '{self.name}': `args_schema_{kind}` must be null without `executable_{kind}`."
                )
        return self


class Manifest(ApiModel):
    """A manifest of version 2 (unknown keys are ignored)."""

    manifest_version: str
    task_list: list[TaskManifest]
    has_args_schemas: bool = False
    args_schema_version: Optional[str] = None
    authors: OptionalNonEmptyStr = None

    @field_validator("manifest_version")
    @classmethod
    def _version_2(cls, value: str) -> str:
        if value != "2":
            raise ValueError(f"Wrong manifest version (given {value})")
        return value

    @model_validator(mode="after")
    def _tasks(self):
        names = [task.name for task in self.task_list]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise root_error(f"Task names in the manifest must be unique (repeated: {', '.join(duplicated)}).")
        if self.has_args_schemas:
            for task in self.task_list:
                for kind in ("non_parallel", "parallel"):
                    has_executable = getattr(task, f"executable_{kind}") is not None
                    if has_executable and getattr(task, f"args_schema_{kind}") is None:
                        raise root_error(
                            f"Manifest has has_args_schemas=True, but task '{task.name}' "
                            f"has task.args_schema_{kind}=None."
                        )
        return self


def read_manifest(host: TaskHost, path: str) -> Manifest:
    """Load and validate a manifest file of the task host (ManifestError if it is unreadable or invalid)."""
    try:
        data = json.loads(host.read_text(path))
    except (TaskHostError, json.JSONDecodeError) as error:
        raise ManifestError(f"Cannot read the manifest {path}: {error}") from None
    try:
        return Manifest.model_validate(data)
    except ValidationError as error:
        raise ManifestError(f"Invalid manifest {path}:\n{describe_errors(error, 'manifest')}") from None


def describe_errors(error: ValidationError, source: str = "") -> str:
    """One line per problem: `<location>: <message>`."""
    lines = []
    for item in to_v1_errors(error, source):
        location = ".".join(str(part) for part in item["loc"] if part != "")
        lines.append(f"{location}: {item['msg']}")
    return "\n".join(lines)


def tasks_from_manifest(
    manifest: Manifest, *, python_bin: str, package_root: str, version: Optional[str]
) -> list[TaskCreate]:
    """The tasks of the manifest, in order; ManifestError if one breaks a task-creation rule."""
    tasks = []
    for entry in manifest.task_list:
        fields: dict[str, Any] = {
            "name": entry.name,
            "version": version,
            "input_types": entry.input_types,
            "output_types": entry.output_types,
            "docs_info": entry.docs_info,
            "docs_link": entry.docs_link,
            "category": entry.category,
            "modality": entry.modality,
            "tags": entry.tags,
            "authors": manifest.authors,
            "args_schema_version": manifest.args_schema_version if manifest.has_args_schemas else None,
        }
        for kind in ("non_parallel", "parallel"):
            executable = getattr(entry, f"executable_{kind}")
            if executable is not None:
                fields[f"command_{kind}"] = f"{python_bin} {PurePosixPath(package_root, executable)}"
                fields[f"meta_{kind}"] = getattr(entry, f"meta_{kind}")
                fields[f"args_schema_{kind}"] = getattr(entry, f"args_schema_{kind}")
        try:
            tasks.append(TaskCreate.model_validate({k: v for k, v in fields.items() if v is not None}))
        except ValidationError as error:
            raise ManifestError(
                f"Task '{entry.name}' of the manifest is not a valid task:\n{describe_errors(error)}"
            ) from None
    return tasks


def check_task_scripts_exist(host: TaskHost, tasks: list[TaskCreate]) -> None:
    """Every command's script (its second word) exists on the task host."""
    for task in tasks:
        for kind in ("non_parallel", "parallel"):
            command = getattr(task, f"command_{kind}")
            if command is None:
                continue
            words = command.split()
            script = words[1] if len(words) > 1 else ""
            if not script or not host.exists(script):
                raise ManifestError(f"Task {task.name} has command_{kind} pointing to missing file {script}.")
