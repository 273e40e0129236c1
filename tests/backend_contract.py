"""What every runner backend must do, checked on a real runner (`backend_contract` fixture).

A backend's tests call `check_backend_contract(make_runner, working_dir, python)`
with a factory of runners for one job context: the checks submit real calls
(a small task script run by `python`), poll them from the runner that
submitted them and from a new one (as a restarted server would), and cancel
them. `working_dir` is the job context's server-side folder. The task script
goes into `task_dir` (default: `working_dir`), where the calls also write a
pid file: a backend whose calls run as another account (`slurm`) passes a
folder that account can read and write.

A backend that enforces time limits passes `time_limit_meta`, a task meta
with a short limit: a call that sleeps past it must end TIMED_OUT.
"""
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from fractal_server.runner.backend import CallStatus, JobRunner, TaskCall

TASK = """
import json, os, signal, sys, time
arguments = json.load(open(sys.argv[sys.argv.index("--args-json") + 1]))
out = sys.argv[sys.argv.index("--out-json") + 1]
print("started", flush=True)
if arguments.get("pid_file"):
    open(arguments["pid_file"], "w").write(str(os.getpid()))
time.sleep(arguments.get("sleep", 0))
if arguments.get("signal"):
    os.kill(os.getpid(), arguments["signal"])
json.dump({"echo": arguments.get("echo")}, open(out, "w"))
sys.exit(arguments.get("exit", 0))
"""


def _wait(runner: JobRunner, calls, handle, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcomes = runner.poll(calls, handle)
        if outcomes is not None:
            return outcomes
        time.sleep(min(runner.poll_interval, 0.5))
    raise AssertionError(f"calls still running after {timeout}s")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def check_backend_contract(
    make_runner: Callable[[], JobRunner],
    working_dir: Path,
    python: str = sys.executable,
    *,
    task_dir: Optional[Path] = None,
    time_limit_meta: Optional[dict] = None,
    time_limit_timeout: float = 300,
):
    task_dir = task_dir or working_dir
    folder = working_dir / "0_contract"
    folder.mkdir(parents=True, exist_ok=True)
    script = task_dir / "contract_task.py"
    script.write_text(TASK)
    os.chmod(script, 0o755)

    def calls(prefix: str, *arguments: dict, meta: Optional[dict] = None) -> list[TaskCall]:
        made = []
        for index, args in enumerate(arguments):
            call = TaskCall(
                subfolder=folder.name, prefix=f"{prefix}_{index}", command=f"{python} {script}", meta=meta or {}
            )
            call.args_file(working_dir).write_text(json.dumps(args))
            made.append(call)
        return made

    runner = make_runner()

    # Every end is told apart, in call order, with the files back on the server side.
    mixed = calls("mixed", {"echo": "a"}, {"exit": 3}, {"signal": 9}, {"echo": "d"})
    outcomes = _wait(runner, mixed, json.loads(json.dumps(runner.submit(mixed))))
    assert [(o.status, o.returncode) for o in outcomes] == [
        (CallStatus.SUCCEEDED, 0),
        (CallStatus.FAILED, 3),
        (CallStatus.FAILED, -9),
        (CallStatus.SUCCEEDED, 0),
    ], outcomes
    assert json.loads(mixed[3].out_file(working_dir).read_text()) == {"echo": "d"}
    assert mixed[1].log_file(working_dir).read_text().startswith("started")
    assert json.loads(mixed[1].status_file(working_dir).read_text()) == {"returncode": 3}

    # A command that cannot start fails with a reason: a backend that starts
    # it itself says why (returncode None); one that hands it to a launcher
    # reports the launcher's exit status and its words in the log (srun: 2,
    # and an execve error).
    missing = [TaskCall(subfolder=folder.name, prefix="missing", command=str(task_dir / "no-such-command"))]
    missing[0].args_file(working_dir).write_text("{}")
    [outcome] = _wait(runner, missing, runner.submit(missing))
    assert outcome.status is CallStatus.FAILED, outcome
    assert outcome.returncode is None or outcome.returncode > 0, outcome
    log = missing[0].log_file(working_dir)
    reason = outcome.detail if outcome.returncode is None else outcome.detail + (log.read_text() if log.exists() else "")
    assert "no-such-command" in reason, (outcome, reason)

    # A handle stored by one runner is polled by another one (a restarted server).
    slow = calls("adopted", {"sleep": 2, "echo": "x"})
    handle = json.loads(json.dumps(runner.submit(slow)))
    runner.close()
    [outcome] = _wait(make_runner(), slow, handle)
    assert outcome.status is CallStatus.SUCCEEDED

    # Cancelling ends the calls wherever they run, also from another runner.
    pid_file = task_dir / "cancelled.pid"
    endless = calls("cancelled", {"sleep": 600, "pid_file": str(pid_file)})
    handle = json.loads(json.dumps(make_runner().submit(endless)))
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    other = make_runner()
    other.cancel(endless, handle)
    [outcome] = _wait(other, endless, handle)
    assert outcome.status is not CallStatus.SUCCEEDED, outcome
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "a cancelled call keeps running"

    if time_limit_meta is not None:
        # A call over its time limit is stopped and said to be so.
        [call] = calls("timed_out", {"sleep": 3600}, meta=time_limit_meta)
        limited = make_runner()
        [outcome] = _wait(limited, [call], limited.submit([call]), timeout=time_limit_timeout)
        assert outcome.status is CallStatus.TIMED_OUT, outcome
