"""Parallel: for its image, update `attributes`/`types`, or add a derived image.

Arguments: `attributes` and `types` to set on the image; `new_image_suffix`
to add `<zarr_url><suffix>` with the image as origin instead; `remove` to
remove the image; `output` to write a given output verbatim; `filters` to
report these filters along with the update (or removal), `filters_by_url`
(`{zarr_url: filters}`) to report different filters for some images.
"""
import os

from _protocol import behave, read_arguments, write_output


def main():
    arguments, out_json = read_arguments()
    zarr_url = arguments["zarr_url"]
    behave(arguments, zarr_url)
    if "output" in arguments:
        write_output(out_json, arguments["output"])
        return
    filters = arguments.get("filters_by_url", {}).get(zarr_url, arguments.get("filters"))
    extra = {} if filters is None else {"filters": filters}
    if arguments.get("remove"):
        write_output(out_json, {"image_list_removals": [zarr_url], **extra})
        return
    update = {"zarr_url": zarr_url}
    if arguments.get("new_image_suffix"):
        update = {"zarr_url": zarr_url + arguments["new_image_suffix"], "origin": zarr_url}
        os.makedirs(update["zarr_url"], exist_ok=True)
    update["attributes"] = arguments.get("attributes", {})
    update["types"] = arguments.get("types", {})
    write_output(out_json, {"image_list_updates": [update], **extra})


if __name__ == "__main__":
    main()
