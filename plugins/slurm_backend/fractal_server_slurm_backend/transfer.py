"""Files moved between the server-side job folder and the user-side one, as the user.

Each direction is one `tar` command run as the user (through sudo, or over
SSH), for all the files of a phase. Going out, the server packs the files it
wrote (scripts, phase files, arguments) and the user's `tar` unpacks them.
Coming back, the user's `tar` packs the files a phase wrote; the server keeps
only regular files with the expected names (never a link a user could point
at the server's own files), and files that do not exist are skipped.
"""

import io
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from fractal_server_slurm_backend.access import ClusterAccess, ClusterError


def send_files(access: ClusterAccess, source: Path, names: Iterable[str], destination: PurePosixPath) -> int:
    """Copy the files `names` (paths relative to `source`) into the user's
    folder `destination`; answer the bytes sent."""
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w") as archive:
        for name in names:
            archive.add(source / name, arcname=name, recursive=False)
    access.run(
        ["tar", "--extract", "--file=-", f"--directory={destination}", "--no-same-owner", "--no-overwrite-dir"],
        stdin=packed.getvalue(),
    )
    return packed.tell()


def fetch_files(access: ClusterAccess, source: PurePosixPath, names: Iterable[str], destination: Path) -> set[str]:
    """Copy the files `names` of the user's folder `source` into `destination`,
    replacing older copies; answer the names copied."""
    wanted = set(names)
    if any("/" in name or "\n" in name or not name for name in wanted):
        raise ValueError("file names must be plain, single-line names")
    result = access.run(
        [
            "tar",
            "--create",
            "--file=-",
            f"--directory={source}",
            "--ignore-failed-read",
            "--verbatim-files-from",
            "--files-from=-",
        ],
        stdin="".join(f"{name}\n" for name in sorted(wanted)).encode(),
    )
    copied = set()
    try:
        with tarfile.open(fileobj=io.BytesIO(result.stdout), mode="r") as archive:
            for member in archive:
                if member.isfile() and member.name in wanted:
                    with open(destination / member.name, "wb") as target:
                        shutil.copyfileobj(archive.extractfile(member), target)
                    copied.add(member.name)
    except tarfile.TarError as error:
        raise ClusterError(f"The files of {source} as {access.description} came back unreadable: {error}") from None
    return copied
