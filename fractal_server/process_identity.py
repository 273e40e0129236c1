"""Who a process is, in a form that can be stored and checked from another process.

Jobs, task-group activities and task calls record the process that runs
them as `host:pid:start`, where `start` is the process's start time in
clock ticks since boot (from /proc). The start time tells a live process
apart from a new one that reused the same pid.
"""
import os
import socket
from pathlib import Path
from typing import Optional


def _state_and_start(pid: int) -> Optional[tuple[str, str]]:
    """The state letter of process `pid` and when it started (clock ticks since boot)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], fields[19]


def process_id(pid: int) -> Optional[str]:
    """The identity of process `pid` of this host (None if there is no such process)."""
    found = _state_and_start(pid)
    return None if found is None else f"{socket.gethostname()}:{pid}:{found[1]}"


def this_process_id() -> str:
    return process_id(os.getpid())


def is_on_this_host(identity: str) -> bool:
    return identity.rsplit(":", 2)[0] == socket.gethostname()


def is_dead(identity: str) -> bool:
    """Whether a process of this host with that identity is gone or a zombie (False for other hosts)."""
    host, pid, ticks = identity.rsplit(":", 2)
    if host != socket.gethostname():
        return False
    found = _state_and_start(int(pid))
    return found is None or found[0] == "Z" or found[1] != ticks
