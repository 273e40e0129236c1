"""Package names, versions, extras and wheel-file names.

Everything here ends up in file-system paths and in the argument lists of
`pip`, so values are checked against the shapes the packaging standards
allow (PEP 503/508/440, wheel file names) before anything is created: a
value that passes cannot be read as an option or step out of its folder.
"""
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_EXTRAS = re.compile(r"^\s*[A-Za-z0-9][A-Za-z0-9._-]*(\s*,\s*[A-Za-z0-9][A-Za-z0-9._-]*)*\s*$")


def normalize_package_name(name: str) -> str:
    """`My_Tasks.Pkg` -> `my-tasks-pkg` (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_package_name(value: str) -> bool:
    return bool(_NAME.match(value))


def is_version(value: str) -> bool:
    """A version (or version prefix): letters, digits, `.`, `_`, `+`, `-`; starts with a letter or digit."""
    return bool(_VERSION.match(value))


def check_package_name(value: str, what: str = "package name") -> str:
    if not is_package_name(value):
        raise ValueError(
            f"Invalid {what} '{value}': only letters, digits, '.', '_' and '-' are allowed, "
            "and it must start and end with a letter or digit."
        )
    return value


def check_version(value: str, what: str = "package version") -> str:
    if not is_version(value):
        raise ValueError(
            f"Invalid {what} '{value}': only letters, digits, '.', '_', '+' and '-' are allowed, "
            "and it must start with a letter or digit."
        )
    return value


def check_extras(value: str) -> str:
    if not _EXTRAS.match(value):
        raise ValueError(
            f"Invalid package extras '{value}': expected extra names separated by commas (e.g. 'a,b')."
        )
    return value


def is_wheel_reference(package: str) -> bool:
    """A `package` of a pip collection names a local wheel file rather than an index package."""
    return "/" in package or package.endswith(".whl")


@dataclass(frozen=True)
class WheelName:
    pkg_name: str
    """Normalised distribution name."""
    version: str


class InvalidWheelName(ValueError):
    pass


def parse_wheel_name(wheel_path: str) -> WheelName:
    """`/x/fractal_tasks_mock-0.0.1-py3-none-any.whl` -> `fractal-tasks-mock`, `0.0.1`."""
    parts = PurePosixPath(wheel_path).name.split("-")
    if len(parts) < 2:
        raise InvalidWheelName(
            "the file name must look like '<distribution>-<version>-<tags>.whl' "
            f"(found {len(parts)} field(s) separated by '-')."
        )
    distribution, version = parts[0], parts[1]
    if not is_package_name(distribution):
        raise InvalidWheelName(f"invalid distribution name '{distribution}'.")
    if not is_version(version):
        raise InvalidWheelName(f"invalid version '{version}'.")
    return WheelName(normalize_package_name(distribution), version)


def install_requirement(package: str, extras: str | None, version: str | None) -> str:
    """The single pip argument that installs the package: `name[extras]==version` or `/x.whl[extras]`."""
    extras_part = f"[{','.join(part.strip() for part in extras.split(','))}]" if extras else ""
    version_part = f"=={version}" if version else ""
    return f"{package}{extras_part}{version_part}"
