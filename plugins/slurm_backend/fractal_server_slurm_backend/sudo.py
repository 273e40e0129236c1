"""Commands run as a user's SLURM account, through the service account's sudo rule.

Every command is an argument list (never a shell line), run as
`sudo --set-home --non-interactive -u <slurm_user> <argv...>`; the user name
is checked first, so that it can only be a user name.
"""

import re
import subprocess
from collections.abc import Sequence
from typing import Optional

from fractal_server.runner.backend import UserSettingsError

_USER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
TIMEOUT = 300
"""Seconds any one command may take; SLURM commands answer in far less."""


class SudoError(RuntimeError):
    """A command run as the SLURM user failed; the message has its output."""


def check_user_name(name: str) -> str:
    """A POSIX-like user name: no option, no `#uid`, nothing a shell would read."""
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
        raise UserSettingsError(f"slurm_user={name!r} is not a valid user name")
    return name


def sudo_argv(user: str, argv: Sequence[str]) -> list[str]:
    return ["sudo", "--set-home", "--non-interactive", "-u", check_user_name(user), *argv]


def run_as(
    user: str, argv: Sequence[str], *, stdin: Optional[bytes] = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run `argv` as `user` from `/` (a folder every account can enter); bytes in and out.

    With `check`, a non-zero exit raises SudoError with the command's output.
    """
    result = subprocess.run(
        sudo_argv(user, argv),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        cwd="/",
        timeout=TIMEOUT,
    )
    if check and result.returncode != 0:
        raise SudoError(describe_failure(user, argv, result))
    return result


def describe_failure(user: str, argv: Sequence[str], result: subprocess.CompletedProcess) -> str:
    return (
        f"Command {' '.join(argv)!r} as user {user} failed with exit status {result.returncode}.\n"
        f"stdout: {result.stdout.decode(errors='replace').strip()}\n"
        f"stderr: {result.stderr.decode(errors='replace').strip()}"
    )
