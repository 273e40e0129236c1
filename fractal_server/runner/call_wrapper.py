"""Run task calls and record how each one ended, next to its log.

This file is a standalone script: it imports nothing but the standard
library, so that a backend can copy it next to the calls and run it with
any Python 3.9+ (on a compute node, on a remote host), with nothing of
Fractal installed there.

    python call_wrapper.py PHASE_FILE [LANE]

PHASE_FILE is a JSON object:

    {"parallel": 4,                    # calls running at once (all if null)
     "chunk_size": 10,                 # optional: run the calls in consecutive groups of
                                       #   that many, a group only when the previous one ended
     "lane_launcher": ["srun", "-n1"], # optional: run the calls in lanes (below)
     "calls": [{"argv": [...], "log": "/path/x.log", "status": "/path/x.status.json"}]}

Without `lane_launcher`, the calls are processes of this wrapper, at most
`parallel` at a time. With it (a list, maybe empty), the wrapper starts
`parallel` lanes, `lane_launcher + [python, call_wrapper.py, PHASE_FILE,
LANE]`, and waits for them: lane L runs calls L, L + parallel, L + 2 *
parallel... one after the other, as its own processes. The launcher puts a
lane where it runs (a SLURM job step of one call's resources): its cost is
paid once per lane, not once per call. The share of each lane is fixed in
advance, so lanes of calls of uneven length end at different times.
`chunk_size` does not go with lanes.

Each call runs in a session of its own (as a task started by hand would:
the kernel gives each session its share of a busy machine), with its stdout
and stderr in its log. When it ends, its status file is written
atomically: `{"returncode": 0}` (negative: killed by that signal), or
`{"returncode": null, "error": "..."}` when it could not start. A call
gets `"oom_killed": true` when the out-of-memory killer ended it: the OOM
kill counter of the wrapper's memory cgroup (`oom_kill` in cgroup v1's
`memory.oom_control`, v2's `memory.events`), which the call shares, grew
while it ran, and either it ran alone (one call at a time) or it was
SIGKILLed (several at a time, a kill is only known to be in the cgroup).

On SIGTERM or SIGINT (a cancellation, a time limit) no call starts any
more, the running ones get the signal (the whole process group of each),
then SIGKILL `KILL_AFTER` seconds later, and their end is recorded as
usual; calls that never started get no status file. The lanes get the
signal too, and do the same with their calls.
"""
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Optional

KILL_AFTER = 3.0


def write_status(path: str, status: dict) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w") as stream:
        json.dump(status, stream)
    os.replace(temporary, path)


def oom_counter_file() -> Optional[str]:
    """The file of this process's memory cgroup that counts its OOM kills; None if there is none."""
    try:
        with open("/proc/self/cgroup") as stream:
            memberships = [line.rstrip("\n").split(":", 2) for line in stream]
        with open("/proc/self/mountinfo") as stream:
            mounts = [line.split() for line in stream]
    except OSError:
        return None
    v1 = [path for _, controllers, path in memberships if "memory" in controllers.split(",")]
    v2 = [path for number, controllers, path in memberships if number == "0" and not controllers]
    for fields in mounts:
        root, mount_point, fstype, options = fields[3], fields[4], fields[-3], fields[-1]
        if v1 and fstype == "cgroup" and "memory" in options.split(","):
            path, name = v1[0], "memory.oom_control"
        elif not v1 and v2 and fstype == "cgroup2":
            path, name = v2[0], "memory.events"
        else:
            continue
        relative = os.path.relpath(path, root)
        if relative.startswith(".."):
            continue
        return os.path.normpath(os.path.join(mount_point, relative, name))
    return None


def oom_kills(counter_file: Optional[str]) -> Optional[int]:
    """The `oom_kill` count of `counter_file`; None if unknown."""
    if counter_file is None:
        return None
    try:
        with open(counter_file) as stream:
            for line in stream:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        pass
    return None


class Phase:
    def __init__(self, calls: list, parallel: Optional[int], chunk_size: Optional[int]):
        self.calls = calls
        self.parallel = parallel or len(calls) or 1
        self.chunk_size = chunk_size or len(calls) or 1
        self.counter_file = oom_counter_file()
        self.terminating = threading.Event()
        self.lock = threading.Lock()
        self.running: set = set()

    def run(self) -> None:
        for start in range(0, len(self.calls), self.chunk_size):
            self._run_concurrently(self.calls[start : start + self.chunk_size])

    def _run_concurrently(self, calls: list) -> None:
        pending = iter(calls)

        def worker() -> None:
            while not self.terminating.is_set():
                with self.lock:
                    call = next(pending, None)
                if call is None:
                    return
                self._run_one(call)

        workers = [threading.Thread(target=worker) for _ in range(min(self.parallel, len(calls)))]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()

    def _run_one(self, call: dict) -> None:
        argv = list(call["argv"])
        kills_before = oom_kills(self.counter_file)
        with open(call["log"], "ab") as log:
            with self.lock:
                if self.terminating.is_set():
                    return
                try:
                    process = subprocess.Popen(
                        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
                    )
                except OSError as error:
                    write_status(
                        call["status"],
                        {
                            "returncode": None,
                            "error": f'Command "{argv[0]}" is not valid. Hint: make sure that it '
                            f"is executable.\nOriginal error: {error}",
                        },
                    )
                    return
                self.running.add(process)
            returncode = process.wait()
            with self.lock:
                self.running.discard(process)
        status = {"returncode": returncode}
        if self._oom_killed(kills_before, returncode):
            status["oom_killed"] = True
        write_status(call["status"], status)

    def _oom_killed(self, kills_before: Optional[int], returncode: int) -> bool:
        kills_after = oom_kills(self.counter_file)
        if kills_before is None or kills_after is None or kills_after <= kills_before:
            return False
        return self.parallel == 1 or returncode == -signal.SIGKILL

    def terminate(self, signum: int, frame) -> None:
        with self.lock:
            first = not self.terminating.is_set()
            self.terminating.set()
        self._signal_running(signum)
        if first:
            killer = threading.Timer(KILL_AFTER, self._signal_running, args=(signal.SIGKILL,))
            killer.daemon = True
            killer.start()

    def _signal_running(self, signum: int) -> None:
        with self.lock:
            for process in self.running:
                try:
                    os.killpg(process.pid, signum)
                except OSError:
                    pass


class Lanes:
    """The lanes of a phase, each a copy of this wrapper started by the lane launcher.

    Only the main thread runs this (signal handlers included): no lock."""

    def __init__(self, launcher: list, count: int, phase_file: str):
        python = [sys.executable] + (["-S"] if sys.flags.no_site else [])
        script = os.path.abspath(__file__)
        self.commands = [launcher + python + [script, phase_file, str(lane)] for lane in range(count)]
        self.processes: list = []
        self.received: Optional[int] = None

    def run(self) -> None:
        for command in self.commands:
            if self.received is not None:
                break
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
            self.processes.append(process)
            if self.received is not None:
                process.send_signal(self.received)
        for process in self.processes:
            process.wait()

    def terminate(self, signum: int, frame) -> None:
        """Pass the signal on: each lane ends its calls (a launcher passes it on to its lane)."""
        self.received = signum
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signum)


def lane_count(spec: dict) -> int:
    return min(spec.get("parallel") or len(spec["calls"]), len(spec["calls"])) or 1


def runner(spec: dict, phase_file: str, lane: Optional[str]):
    """What runs the calls of this process: a phase, its lanes, or one lane."""
    launcher = spec.get("lane_launcher")
    if launcher is None:
        if lane is not None:
            raise ValueError("a LANE needs a lane_launcher in the phase file")
        return Phase(spec["calls"], spec.get("parallel"), spec.get("chunk_size"))
    if spec.get("chunk_size"):
        raise ValueError("chunk_size does not go with lane_launcher")
    count = lane_count(spec)
    if lane is None:
        return Lanes(list(launcher), count, os.path.abspath(phase_file))
    if not lane.isdigit() or int(lane) >= count:
        raise ValueError(f"LANE must be a number from 0 to {count - 1}, not {lane!r}")
    return Phase(spec["calls"][int(lane) :: count], 1, None)


def main(argv: list) -> int:
    if len(argv) not in (2, 3):
        sys.stderr.write("usage: call_wrapper.py PHASE_FILE [LANE]\n")
        return 2
    with open(argv[1]) as stream:
        spec = json.load(stream)
    try:
        calls = runner(spec, argv[1], argv[2] if len(argv) == 3 else None)
    except ValueError as error:
        sys.stderr.write(f"call_wrapper.py: {error}\n")
        return 2
    signal.signal(signal.SIGTERM, calls.terminate)
    signal.signal(signal.SIGINT, calls.terminate)
    calls.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
