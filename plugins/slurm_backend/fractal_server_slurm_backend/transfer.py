"""Files moved between the server-side job folder and the user-side one, as the SLURM user.

Each direction is one `tar` process run as the user, for all the files of a
phase. Going out, the server packs the files it wrote (scripts, phase files,
arguments) and the user's `tar` unpacks them. Coming back, the user's `tar`
packs the files a phase wrote; the server keeps only regular files with the
expected names (never a link a user could point at the server's own files),
and files that do not exist are skipped.
"""

import io
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from fractal_server_slurm_backend.sudo import TIMEOUT, SudoError, run_as, sudo_argv


def send_files(user: str, source: Path, names: Iterable[str], destination: PurePosixPath) -> None:
    """Copy the files `names` (paths relative to `source`) into the folder
    `destination`, which `user` owns, as that user."""
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w") as archive:
        for name in names:
            archive.add(source / name, arcname=name, recursive=False)
    run_as(
        user,
        ["tar", "--extract", "--file=-", f"--directory={destination}", "--no-same-owner", "--no-overwrite-dir"],
        stdin=packed.getvalue(),
    )


def fetch_files(user: str, source: PurePosixPath, names: Iterable[str], destination: Path) -> set[str]:
    """Copy the files `names` of the folder `source` (readable by `user`) into
    `destination`, replacing older copies; answer the names copied."""
    wanted = set(names)
    if any("/" in name or "\n" in name or not name for name in wanted):
        raise ValueError("file names must be plain, single-line names")
    argv = sudo_argv(
        user,
        [
            "tar",
            "--create",
            "--file=-",
            f"--directory={source}",
            "--ignore-failed-read",
            "--verbatim-files-from",
            "--files-from=-",
        ],
    )
    copied = set()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, cwd="/"
        )
        feeder = threading.Thread(target=_feed, args=(process.stdin, sorted(wanted)))
        feeder.start()
        try:
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                for member in archive:
                    if member.isfile() and member.name in wanted:
                        with open(destination / member.name, "wb") as target:
                            shutil.copyfileobj(archive.extractfile(member), target)
                        copied.add(member.name)
        except tarfile.ReadError as error:
            read_error = error
        else:
            read_error = None
        finally:
            process.stdout.close()
            feeder.join()
            returncode = process.wait(TIMEOUT)
        if returncode != 0 or read_error is not None:
            errors.seek(0)
            raise SudoError(
                f"Copying files of {source} as user {user} failed (exit status {returncode}): "
                f"{errors.read().decode(errors='replace').strip() or read_error}"
            )
    return copied


def _feed(stream, names: list[str]) -> None:
    with stream:
        stream.write("".join(f"{name}\n" for name in names).encode())
