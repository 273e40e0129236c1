"""Non-parallel: append `line` (one line) to the file `path`, after the shared switches.

For exactly-once checks: every run leaves one more line in the file, written
with a single `O_APPEND` write so that concurrent runs never interleave.
"""
import os

from _protocol import behave, read_arguments, write_output


def main():
    arguments, out_json = read_arguments()
    behave(arguments)
    descriptor = os.open(arguments["path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, (arguments["line"] + "\n").encode())
    finally:
        os.close(descriptor)
    write_output(out_json, {})


if __name__ == "__main__":
    main()
