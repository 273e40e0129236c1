"""The task protocol: read the arguments file, write the output file."""
import argparse
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
    print(f"arguments: {json.dumps(arguments, sort_keys=True)}")
    return arguments, options.out_json


def behave(arguments: dict, zarr_url: str = "") -> None:
    """Apply the behaviour switches shared by the generic tasks."""
    time.sleep(float(arguments.get("sleep", 0)))
    fail_on = arguments.get("fail_on")
    if arguments.get("fail") or (fail_on is not None and zarr_url in fail_on):
        print(f"Failing on request (zarr_url={zarr_url!r})", file=sys.stderr)
        sys.exit(1)
    if arguments.get("kill_self"):
        os.kill(os.getpid(), signal.SIGKILL)


def write_output(path: str, output, raw: str = "") -> None:
    with open(path, "w") as handle:
        handle.write(raw if raw else json.dumps(output))
