"""The task protocol: read the arguments file, write the output file."""
import argparse
import base64
import json
import os
import signal
import sys
import time


def read_arguments() -> tuple[dict, str]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--args-json", required=True)
    parser.add_argument("--out-json", required=True)
    options = parser.parse_args()
    with open(options.args_json) as handle:
        arguments = json.load(handle)
    print(f"arguments: {json.dumps(arguments, sort_keys=True)}", flush=True)
    return arguments, options.out_json


def behave(arguments: dict, zarr_url: str = "") -> None:
    """Apply the behaviour switches shared by the generic tasks.

    `print_times`: print `start=<epoch>` before and `end=<epoch>` after
    waiting: for the file `wait_for_file` to exist (at most 60 s), then for
    `sleep` seconds; `noise_bytes`: print that many random bytes (base64,
    hardly compressible); `fail` (or `fail_on`, a list of zarr_urls): exit 1
    after printing to stderr; `kill_self`: die from SIGKILL; `allocate_mb`:
    fill that many MB of memory first.
    """
    if arguments.get("allocate_mb"):
        print(f"allocated {len(b'x' * int(arguments['allocate_mb'] * 1000 * 1000))} bytes", flush=True)
    if arguments.get("noise_bytes"):
        print(base64.b64encode(os.urandom(int(arguments["noise_bytes"]))).decode(), flush=True)
    if arguments.get("print_times"):
        print(f"start={time.time()}", flush=True)
    gate = arguments.get("wait_for_file")
    deadline = time.time() + 60
    while gate and not os.path.exists(gate) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(float(arguments.get("sleep", 0)))
    if arguments.get("print_times"):
        print(f"end={time.time()}", flush=True)
    fail_on = arguments.get("fail_on")
    if arguments.get("fail") or (fail_on is not None and zarr_url in fail_on):
        print(f"Failing on request (zarr_url={zarr_url!r})", file=sys.stderr)
        sys.exit(1)
    if arguments.get("kill_self"):
        os.kill(os.getpid(), signal.SIGKILL)


def write_output(path: str, output, raw: str = "") -> None:
    with open(path, "w") as handle:
        handle.write(raw if raw else json.dumps(output))
