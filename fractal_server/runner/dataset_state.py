"""The dataset as a job sees it: images and filters, changed task after task.

Images are kept in a dict keyed by `zarr_url` (insertion ordered), so that
updating or removing one image costs O(1) and a task touching N images
costs O(N).
"""
from collections import Counter
from typing import Any

from fractal_server.runner.errors import JobExecutionError
from fractal_server.runner.task_output import ImageUpdate, TaskOutput

Image = dict[str, Any]


def image_matches(image: Image, types: dict[str, bool], attributes: dict[str, Any]) -> bool:
    """A missing type counts as false; a null attribute filter is no constraint."""
    for key, value in types.items():
        if image["types"].get(key, False) != value:
            return False
    for key, value in attributes.items():
        if value is not None and (key not in image["attributes"] or image["attributes"][key] != value):
            return False
    return True


class DatasetState:
    def __init__(self, zarr_dir: str, images: list[Image], filters: dict):
        self.zarr_dir = zarr_dir
        self.images: dict[str, Image] = {image["zarr_url"]: image for image in images}
        self.filters = {
            "attributes": dict(filters.get("attributes") or {}),
            "types": dict(filters.get("types") or {}),
        }

    def image_list(self) -> list[Image]:
        return list(self.images.values())

    def select(self, input_filters: dict, input_types: dict[str, bool]) -> list[Image]:
        """The images a task sees: dataset filters overridden by the task's, in order."""
        types = {**self.filters["types"], **(input_filters.get("types") or {})}
        attributes = {**self.filters["attributes"], **(input_filters.get("attributes") or {})}
        if types or attributes:
            selected = [image for image in self.images.values() if image_matches(image, types, attributes)]
        else:
            selected = list(self.images.values())
        for image in selected:
            if not image_matches(image, input_types, {}):
                raise JobExecutionError(
                    "Invalid filtered image list\n"
                    f"Task input types: task.input_types={input_types}\n"
                    f"Image zarr_url: {image['zarr_url']}\n"
                    f"Image types: {image['types']}\n"
                )
        return selected

    def apply(self, output: TaskOutput, selected: list[Image], task_name: str, output_types: dict[str, bool]) -> None:
        """Apply a task's output; on error the state is left as it was."""
        updates = output.image_list_updates
        if not updates and not output.image_list_removals:
            updates = [ImageUpdate(zarr_url=image["zarr_url"]) for image in selected]
        _check_unique_urls(updates, output.image_list_removals)
        for zarr_url in output.image_list_removals:
            if zarr_url not in self.images:
                raise JobExecutionError(f"Cannot remove missing image (zarr_url={zarr_url}).")
        _check_type_filters(output, task_name, output_types)
        undo: list[tuple[str, Any]] = []
        try:
            for update in updates:
                undo.append((update.zarr_url, self.images.get(update.zarr_url)))
                if update.zarr_url in self.images:
                    self._update_existing(update, output_types)
                else:
                    self._add_new(update, output_types)
        except JobExecutionError:
            for zarr_url, previous in reversed(undo):
                if previous is None:
                    self.images.pop(zarr_url, None)
                else:
                    self.images[zarr_url] = previous
            raise
        for zarr_url in output.image_list_removals:
            del self.images[zarr_url]
        self.filters["attributes"].update(output.filters.attributes)
        self.filters["types"].update(output_types)
        self.filters["types"].update(output.filters.types)

    def _update_existing(self, update: ImageUpdate, output_types: dict[str, bool]) -> None:
        if update.origin is not None and update.origin != update.zarr_url:
            raise JobExecutionError(
                "Cannot edit an image with zarr_url different from origin.\n"
                f"zarr_url={update.zarr_url}\norigin={update.origin}"
            )
        image = self.images[update.zarr_url]
        attributes = {**image["attributes"], **update.attributes}
        self.images[update.zarr_url] = {
            **image,
            "attributes": {k: v for k, v in attributes.items() if v is not None},
            "types": {**image["types"], **update.types, **output_types},
        }

    def _add_new(self, update: ImageUpdate, output_types: dict[str, bool]) -> None:
        if not update.zarr_url.startswith(self.zarr_dir):
            raise JobExecutionError(
                "Cannot create image if zarr_dir is not a parent directory of zarr_url.\n"
                f"zarr_dir: {self.zarr_dir}\nzarr_url: {update.zarr_url}"
            )
        if update.zarr_url == self.zarr_dir:
            raise JobExecutionError(
                "Cannot create image if zarr_url is equal to zarr_dir.\n"
                f"zarr_dir: {self.zarr_dir}\nzarr_url: {update.zarr_url}"
            )
        source = self.images.get(update.origin) if update.origin else None
        attributes = dict(source["attributes"]) if source else {}
        types = dict(source["types"]) if source else {}
        attributes.update(update.attributes)
        self.images[update.zarr_url] = {
            "zarr_url": update.zarr_url,
            "origin": update.origin,
            "attributes": {k: v for k, v in attributes.items() if v is not None},
            "types": {**types, **update.types, **output_types},
        }


def _check_type_filters(output: TaskOutput, task_name: str, output_types: dict[str, bool]) -> None:
    overlap = set(output.filters.types) & set(output_types)
    if overlap:
        raise JobExecutionError(
            f"Some type filters are being set twice, for task '{task_name}'.\n"
            f"Types from task output: {output.filters.types}\n"
            f"Types from task manifest: {output_types}\n"
            f"Overlap: {sorted(overlap)}"
        )


def _check_unique_urls(updates: list[ImageUpdate], removals: list[str]) -> None:
    counts = Counter([update.zarr_url for update in updates] + list(removals))
    repeated = [url for url, count in counts.items() if count > 1]
    if repeated:
        raise ValueError(
            f"TaskOutput ({len(updates)} image_list_updates and {len(removals)} "
            "image_list_removals) has non-unique zarr_urls:\n" + "\n".join(repeated)
        )
