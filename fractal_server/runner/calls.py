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


OOM_KILLED = "The kernel's out-of-memory killer ended it (the OOM kill count of its memory cgroup grew while it ran)."


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
    lane_launcher: Optional[Sequence[str]] = None,
) -> dict:
    """The call wrapper's phase file, for calls that run with their files under `root`.

    With a `lane_launcher`, the calls run in `parallel` lanes (see the wrapper)."""
    return {
        "parallel": parallel,
        "chunk_size": chunk_size,
        "lane_launcher": None if lane_launcher is None else list(lane_launcher),
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
    if status.get("oom_killed"):
        return CallOutcome(CallStatus.OUT_OF_MEMORY, status["returncode"], OOM_KILLED)
    return CallOutcome.from_returncode(status["returncode"])
