"""Compound init: one parallelization item per input image (plus `extra_items`)."""
from _protocol import behave, read_arguments, write_output


def main():
    arguments, out_json = read_arguments()
    behave(arguments)
    items = [
        {"zarr_url": zarr_url, "init_args": {"position": index, **arguments.get("init_args", {})}}
        for index, zarr_url in enumerate(arguments["zarr_urls"])
    ]
    items += arguments.get("extra_items", [])
    write_output(out_json, {"parallelization_list": items})


if __name__ == "__main__":
    main()
