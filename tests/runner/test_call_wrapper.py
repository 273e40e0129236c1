"""The call wrapper's lanes and out-of-memory record, run for real as a script
(as the backends run it). Its lanes under SLURM, and an OOM kill in a SLURM
job step, are in tests/slurm/test_script.py."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fractal_server.runner import call_wrapper
from fractal_server.runner.calls import WRAPPER_SCRIPT

HUNGRY = [sys.executable, "-c", "b = bytearray(300 * 1000 * 1000)"]


def write_phase(folder: Path, argvs: list, **spec) -> Path:
    calls = [
        {"argv": argv, "log": str(folder / f"{index}.log"), "status": str(folder / f"{index}.status")}
        for index, argv in enumerate(argvs)
    ]
    path = folder / "phase.json"
    path.write_text(json.dumps({**spec, "calls": calls}))
    return path


def wrapper(phase: Path, *more: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-S", str(WRAPPER_SCRIPT), str(phase), *more], **kwargs)


def statuses(folder: Path, count: int) -> list:
    return [
        json.loads((folder / f"{index}.status").read_text()) if (folder / f"{index}.status").exists() else None
        for index in range(count)
    ]


def test_lanes_share_the_calls_and_run_each_share_in_order(tmp_path):
    """Lane L runs calls L, L + P, ...: each call logs the process that ran it
    (its lane), whether the lane launcher set its environment, and how many
    calls were running when it started."""
    probe = 'echo "$PPID $FROM_LAUNCHER"; touch "running.$0"; ls running.* | wc -l > "seen.$0"; sleep 0.3; rm "running.$0"'
    phase = write_phase(
        tmp_path,
        [["sh", "-c", probe, str(index)] for index in range(5)],
        parallel=2,
        lane_launcher=["env", "FROM_LAUNCHER=yes"],
    )
    driver = wrapper(phase, cwd=tmp_path)
    assert driver.wait(timeout=30) == 0
    lanes = [(tmp_path / f"{index}.log").read_text().split() for index in range(5)]
    assert {launched for _, launched in lanes} == {"yes"}
    parents = [parent for parent, _ in lanes]
    assert parents[0] == parents[2] == parents[4] != parents[1] == parents[3]
    assert str(driver.pid) not in parents
    assert max(int((tmp_path / f"seen.{index}").read_text()) for index in range(5)) <= 2
    assert statuses(tmp_path, 5) == [{"returncode": 0}] * 5


def test_sigterm_ends_the_running_calls_of_every_lane(tmp_path):
    """The lanes' running calls end with the signal and are recorded; the
    calls not started yet get no status file."""
    phase = write_phase(
        tmp_path,
        [["sh", "-c", "echo started; exec sleep 600"] for _ in range(4)],
        parallel=2,
        lane_launcher=[],
    )
    driver = wrapper(phase)
    deadline = time.monotonic() + 20
    while not all((tmp_path / f"{index}.log").exists() for index in (0, 1)):
        assert time.monotonic() < deadline, "the first call of each lane did not start"
        time.sleep(0.05)
    time.sleep(0.3)
    driver.send_signal(signal.SIGTERM)
    assert driver.wait(timeout=call_wrapper.KILL_AFTER + 10) == 0
    assert statuses(tmp_path, 4) == [{"returncode": -signal.SIGTERM}] * 2 + [None, None]


@pytest.mark.parametrize(
    "spec, more, message",
    [
        ({"parallel": 2, "lane_launcher": [], "chunk_size": 2}, (), "chunk_size does not go with lane_launcher"),
        ({"parallel": 2, "lane_launcher": []}, ("2",), "LANE must be a number from 0 to 1, not '2'"),
        ({"parallel": 2}, ("0",), "a LANE needs a lane_launcher in the phase file"),
    ],
)
def test_lanes_are_checked(tmp_path, spec, more, message):
    phase = write_phase(tmp_path, [["true"]] * 3, **spec)
    result = wrapper(phase, *more, stderr=subprocess.PIPE, text=True)
    assert result.wait(timeout=10) == 2
    assert result.stderr.read() == f"call_wrapper.py: {message}\n"
    assert statuses(tmp_path, 3) == [None] * 3


def test_the_oom_counter_is_that_of_the_own_memory_cgroup():
    counter = call_wrapper.oom_counter_file()
    if counter is None:
        pytest.skip("no memory cgroup here")
    assert Path(counter).name in ("memory.oom_control", "memory.events")
    assert isinstance(call_wrapper.oom_kills(counter), int)


@pytest.fixture
def small_memory_cgroup():
    """A cgroup v1 memory cgroup of 50 MB (no swap) under this process's own, made for the test (root only)."""
    counter = call_wrapper.oom_counter_file()
    if os.geteuid() != 0 or counter is None or not counter.endswith("memory.oom_control"):
        pytest.skip("needs root and a cgroup v1 memory hierarchy")
    cgroup = Path(counter).parent / f"fractal-test-{os.getpid()}"
    cgroup.mkdir()
    try:
        (cgroup / "memory.limit_in_bytes").write_text("50M")
        yield cgroup
    finally:
        deadline = time.monotonic() + 10
        while (cgroup / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.1)
        cgroup.rmdir()


@pytest.mark.parametrize(
    "parallel, others, their_statuses",
    [
        # one at a time: a call's own SIGKILL is not an OOM kill
        (1, [["sh", "-c", "kill -9 $$"], ["true"]], [{"returncode": -signal.SIGKILL}, {"returncode": 0}]),
        # at once: a call that was not SIGKILLed is not an OOM kill
        (2, [["sleep", "1"]], [{"returncode": 0}]),
    ],
)
def test_a_call_killed_by_the_oom_killer_is_recorded_so(tmp_path, small_memory_cgroup, parallel, others, their_statuses):
    """A real OOM kill in the wrapper's memory cgroup."""
    phase = write_phase(tmp_path, [HUNGRY, *others], parallel=parallel)
    enter_and_run = f'echo $$ > {small_memory_cgroup}/cgroup.procs && exec "$@"'
    command = ["sh", "-c", enter_and_run, "sh", sys.executable, "-S", str(WRAPPER_SCRIPT), str(phase)]
    assert subprocess.run(command, timeout=60).returncode == 0
    assert statuses(tmp_path, 1 + len(others)) == [{"returncode": -signal.SIGKILL, "oom_killed": True}, *their_statuses]
