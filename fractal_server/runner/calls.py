"""What every backend does with task calls: their command lines, phase files and status files."""
import json
import shlex
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Optional

from fractal_server.runner import call_wrapper
from fractal_server.runner.backend import CallOutcome, CallStatus, TaskCall

WRAPPER_SCRIPT = Path(call_wrapper.__file__)
"""The standalone call wrapper; backends run it, or copy it where the calls run."""


def call_argv(call: TaskCall, root: PurePath) -> list[str]:
    """The task's command line, with its files under `root` (the job folder where the call runs)."""
    return shlex.split(call.command) + [
        "--args-json",
        str(call.args_file(root)),
        "--out-json",
        str(call.out_file(root)),
    ]


def phase_spec(
    calls: Sequence[TaskCall],
    root: PurePath,
    *,
    parallel: Optional[int],
    chunk_size: Optional[int] = None,
    launcher: Sequence[str] = (),
) -> dict:
    """The call wrapper's phase file, for calls that run with their files under `root`."""
    return {
        "parallel": parallel,
        "chunk_size": chunk_size,
        "launcher": list(launcher),
        "calls": [
            {
                "argv": call_argv(call, root),
                "log": str(call.log_file(root)),
                "status": str(call.status_file(root)),
            }
            for call in calls
        ],
    }


def read_outcome(call: TaskCall, root: Path) -> Optional[CallOutcome]:
    """How the call ended, from its status file under `root`; None if there is none (yet)."""
    try:
        status = json.loads(call.status_file(root).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        return CallOutcome(CallStatus.LOST, detail=f"Unreadable status file of call {call.prefix}: {error}")
    if status.get("returncode") is None:
        return CallOutcome(CallStatus.FAILED, None, status.get("error") or "The task could not start.")
    return CallOutcome.from_returncode(status["returncode"])
