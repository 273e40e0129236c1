"""Non-parallel: write `output` as the task output (or `raw_output` verbatim)."""
from _protocol import behave, read_arguments, write_output


def main():
    arguments, out_json = read_arguments()
    behave(arguments)
    if "output" in arguments or "raw_output" in arguments:
        write_output(out_json, arguments.get("output"), arguments.get("raw_output", ""))


if __name__ == "__main__":
    main()
