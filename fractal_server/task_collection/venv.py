"""The commands that build and inspect a task group's virtual environment.

Each step runs one program on the task host with an argument list (never a
shell string), logs the command line and what it printed, and raises
`StepFailed` on a non-zero exit status. Package names, versions and paths
reach these functions already validated (see `packages`).
"""
import shlex
import time
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Optional

from fractal_server.task_collection.activity_log import ActivityRecorder, progress_stamp
from fractal_server.task_collection.hosts import TaskHost, TaskHostError

MANIFEST_FILE_NAME = "__FRACTAL_MANIFEST__.json"


class StepFailed(Exception):
    """A command of the procedure failed; the message says which and why."""


# Run by the venv's python with the venv's path: disk usage in kB (as `du -sk`) and number of regular files.
MEASURE_SIZE = """
import os, stat, sys
blocks, files = os.lstat(sys.argv[1]).st_blocks, 0
for root, dirs, names in os.walk(sys.argv[1]):
    for name in dirs + names:
        info = os.lstat(os.path.join(root, name))
        blocks += info.st_blocks
        files += stat.S_ISREG(info.st_mode)
print(blocks * 512 // 1024, files)
"""


def run_command(host: TaskHost, argv: list[str], log: ActivityRecorder, what: str, action: str) -> str:
    """Run `argv` on `host`, log it and its output, save the log; return its stdout."""
    log.debug(f"{progress_stamp(action)} START {what}: {shlex.join(argv)}")
    started = time.monotonic()
    try:
        done = host.run(argv)
    except TaskHostError as error:
        log.save()
        raise StepFailed(f"{what}: {error}") from None
    log.output("stdout", done.stdout)
    log.output("stderr", done.stderr)
    elapsed = time.monotonic() - started
    log.debug(f"{progress_stamp(action)} END {what} (exit status {done.returncode}, {elapsed:.1f} s)")
    log.save()
    if done.returncode != 0:
        raise StepFailed(f"{what} failed with exit status {done.returncode}.")
    return done.stdout


@dataclass(frozen=True)
class Venv:
    host: TaskHost
    path: PurePosixPath
    log: ActivityRecorder
    action: str
    """Label of the progress lines, e.g. `collect-task`."""

    @property
    def python(self) -> PurePosixPath:
        return self.path / "bin" / "python"

    def _pip(self, *args: str, what: str) -> str:
        return run_command(self.host, [str(self.python), "-m", "pip", *args], self.log, what, self.action)

    def create(self, interpreter: str) -> None:
        run_command(
            self.host, [interpreter, "-m", "venv", str(self.path), "--copies"], self.log, "create venv", self.action
        )

    def prepare_pip(self, max_pip_version: str) -> None:
        """pip upgraded (but not beyond the cap), and setuptools."""
        self._pip("install", "--no-cache-dir", f"pip<={max_pip_version}", "--upgrade", what="upgrade pip")
        self._pip("install", "--no-cache-dir", "setuptools", what="install setuptools")

    def install(self, *requirements: str, what: str = "install package") -> None:
        self._pip("install", "--no-cache-dir", *requirements, what=what)

    def install_requirements_file(self, requirements: str) -> None:
        self._pip("install", "--no-cache-dir", "-r", requirements, what="install from pip freeze")

    def pin(self, pinned_versions: dict[str, str]) -> None:
        """Each pinned package must already be installed; then all are installed at once, one argument each."""
        if not pinned_versions:
            return
        for name in pinned_versions:
            self._pip("show", name, what=f"check that pinned package {name} is installed")
        pins = [f"{name}=={version}" for name, version in pinned_versions.items()]
        self.install(*pins, what="install pinned versions")

    def freeze(self) -> str:
        return self._pip("freeze", "--all", what="pip freeze")

    def show(self, package: str) -> "InstalledPackage":
        output = self._pip("show", "--files", package, what="pip show")
        installed = InstalledPackage.parse(output, module=package.replace("-", "_"))
        self.log.debug(
            f"Python interpreter: {self.python}\n"
            f"Package name: {installed.name}\n"
            f"Package version: {installed.version}\n"
            f"Package parent folder: {installed.location}\n"
            f"Manifest relative path: {installed.manifest_relative_path}\n"
            f"Manifest absolute path: {installed.manifest_path}"
        )
        if installed.manifest_relative_path is None:
            raise StepFailed(f"Manifest path not found for {package} ({MANIFEST_FILE_NAME} is not among its files).")
        return installed

    def size(self) -> tuple[int, int]:
        """Disk usage in kB (as `du -sk`) and number of regular files."""
        try:
            done = self.host.run([str(self.python), "-c", MEASURE_SIZE, str(self.path)])
        except TaskHostError as error:
            raise StepFailed(f"Cannot measure the virtual environment: {error}") from None
        if done.returncode != 0:
            raise StepFailed(f"Cannot measure the virtual environment: {done.stderr.strip()}")
        size_kb, files = (int(word) for word in done.stdout.split())
        self.log.debug(f"Virtual environment size: {size_kb} kB, {files} files")
        return size_kb, files


@dataclass(frozen=True)
class InstalledPackage:
    """What `pip show --files` tells about the installed package."""

    name: str
    version: str
    location: str
    manifest_relative_path: Optional[str]

    @property
    def manifest_path(self) -> Optional[PurePosixPath]:
        if self.manifest_relative_path is None:
            return None
        return PurePosixPath(self.location) / self.manifest_relative_path

    @classmethod
    def parse(cls, output: str, module: str) -> "InstalledPackage":
        """Read the output of `pip show --files`; the manifest is the one of `module` if there are several."""
        fields: dict[str, str] = {}
        files: list[str] = []
        in_files = False
        for line in output.splitlines():
            if in_files and line.startswith((" ", "\t")):
                files.append(line.strip())
                continue
            in_files = False
            key, sep, value = line.partition(":")
            if not sep:
                continue
            if key == "Files":
                in_files = True
            elif key in fields:
                raise StepFailed(f"pip show printed '{key}' more than once.")
            else:
                fields[key] = value.strip()
        missing = [key for key in ("Name", "Version", "Location") if not fields.get(key)]
        if missing:
            raise StepFailed(f"pip show did not print {', '.join(missing)}.")
        manifests = [f for f in files if PurePosixPath(f).name == MANIFEST_FILE_NAME]
        if len(manifests) > 1:
            manifests = [f for f in manifests if PurePosixPath(f).parent == PurePosixPath(module)]
            if len(manifests) != 1:
                raise StepFailed(f"The package has several {MANIFEST_FILE_NAME} files, none of them in {module}/.")
        return cls(fields["Name"], fields["Version"], fields["Location"], manifests[0] if manifests else None)
