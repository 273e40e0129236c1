"""Compound compute: add `<zarr_url><suffix>` (default `_mip`) derived from its item."""
import os

from _protocol import behave, read_arguments, write_output


def main():
    arguments, out_json = read_arguments()
    zarr_url = arguments["zarr_url"]
    behave(arguments, zarr_url)
    new_url = zarr_url + arguments.get("suffix", "_mip")
    os.makedirs(new_url, exist_ok=True)
    attributes = {"position": arguments["init_args"].get("position")}
    write_output(out_json, {"image_list_updates": [{"zarr_url": new_url, "origin": zarr_url, "attributes": attributes}]})


if __name__ == "__main__":
    main()
