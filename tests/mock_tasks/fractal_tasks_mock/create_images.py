"""Non-parallel: create `num_images` image folders under `zarr_dir` and report them."""
import os

from _protocol import behave, read_arguments, write_output


def main():
    arguments, out_json = read_arguments()
    behave(arguments)
    zarr_dir = arguments["zarr_dir"]
    updates = []
    for index in range(int(arguments.get("num_images", 2))):
        well = f"B{index:02d}"
        zarr_url = f"{zarr_dir}/plate.zarr/B/{index:02d}/0"
        os.makedirs(zarr_url, exist_ok=True)
        updates.append(
            {"zarr_url": zarr_url, "attributes": {"plate": "plate.zarr", "well": well}, "types": {"is_3D": True}}
        )
    write_output(out_json, {"image_list_updates": updates, "filters": {"attributes": {"plate": "plate.zarr"}}})


if __name__ == "__main__":
    main()
