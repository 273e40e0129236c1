"""Zip archives of job folders."""
import io
import os
import shutil
import zipfile
from pathlib import Path

MIN_SIZE_TO_DELETE_FOLDER = 1024 * 1024


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def write_zip(folder: Path, target) -> int:
    """Write every file of `folder` (paths relative to it) into `target`; return the count."""
    files = _files(folder)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(folder))
    return len(files)


def archive_job_folder(folder: Path) -> Path:
    """`<folder>.zip`, written atomically; the folder is removed only when safe.

    Small archives keep their folder too, so that recent jobs stay easy to inspect.
    """
    final = folder.with_name(folder.name + ".zip")
    temporary = folder.with_name(folder.name + "_tmp.zip")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as stream:
        count = write_zip(folder, stream)
    os.replace(temporary, final)
    with zipfile.ZipFile(final) as archive:
        archived = len(archive.namelist())
    if archived == count and final.stat().st_size >= MIN_SIZE_TO_DELETE_FOLDER:
        shutil.rmtree(folder)
    return final


def zip_bytes(folder: Path) -> bytes:
    """The folder zipped in memory (for downloads while a job runs)."""
    buffer = io.BytesIO()
    write_zip(folder, buffer)
    return buffer.getvalue()
