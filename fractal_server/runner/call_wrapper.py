"""Run task calls and record how each one ended, next to its log.

This file is a standalone script: it imports nothing but the standard
library, so that a backend can copy it next to the calls and run it with
any Python 3.9+ (on a compute node, on a remote host), with nothing of
Fractal installed there.

    python call_wrapper.py PHASE_FILE

PHASE_FILE is a JSON object:

    {"parallel": 4,                    # calls running at once (all if null)
     "chunk_size": 10,                 # optional: run the calls in consecutive groups of
                                       #   that many, a group only when the previous one ended
     "launcher": ["srun", "-n1"],      # optional prefix of every command
     "calls": [{"argv": [...], "log": "/path/x.log", "status": "/path/x.status.json"}]}

Each call runs in a session of its own (as a task started by hand would:
the kernel gives each session its share of a busy machine), with its stdout
and stderr in its log. When it ends, its status file is written
atomically: `{"returncode": 0}` (negative: killed by that signal), or
`{"returncode": null, "error": "..."}` when it could not start. On SIGTERM
or SIGINT (a cancellation, a time limit) no call starts any more, the
running ones get the signal (the whole process group of each), then
SIGKILL `KILL_AFTER` seconds later, and their end is recorded as usual;
calls that never started get no status file.
"""
import json
import os
import signal
import subprocess
import sys
import threading

KILL_AFTER = 3.0


def write_status(path: str, status: dict) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w") as stream:
        json.dump(status, stream)
    os.replace(temporary, path)


class Phase:
    def __init__(self, spec: dict):
        self.calls = spec["calls"]
        self.parallel = spec.get("parallel") or len(self.calls) or 1
        self.chunk_size = spec.get("chunk_size") or len(self.calls) or 1
        self.launcher = list(spec.get("launcher") or [])
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
        argv = self.launcher + list(call["argv"])
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
        write_status(call["status"], {"returncode": returncode})

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


def main(argv: list) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: call_wrapper.py PHASE_FILE\n")
        return 2
    with open(argv[1]) as stream:
        phase = Phase(json.load(stream))
    signal.signal(signal.SIGTERM, phase.terminate)
    signal.signal(signal.SIGINT, phase.terminate)
    phase.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
