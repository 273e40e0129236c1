"""Dataset image operations at 1,000 / 10,000 / 100,000 images, over HTTP only.

Works against any server speaking the fractal-server v2 API:

    python benchmarks/images.py --base-url http://127.0.0.1:8000 \\
        --user admin@fractal.xy --password 1234 --server-pid <pid>

It imports one dataset per size (POST .../dataset/import/), then times each
operation `--runs` times per size and prints the medians in milliseconds as
a Markdown table. The sizes take turns run after run, so that changes in
the machine's load do not favour one size. With `--server-pid`, the
server's resident memory (VmRSS) is read from /proc after each import and
at the end. The datasets are left in a project
named `benchmark-<timestamp>`; `--cleanup` deletes it at the end.
"""
import argparse
import math
import statistics
import sys
import time
from pathlib import Path

from api_session import Api

PAGE_SIZE = 100
ROWS, COLUMNS = "ABCDEFGH", 12  # a 96-well plate


def make_images(zarr_dir: str, count: int) -> list[dict]:
    """Images of 96-well plates, 10 fields per well, a few attributes and types."""
    images = []
    for index in range(count):
        plate, rest = divmod(index, 96 * 10)
        well, field = divmod(rest, 10)
        row, column = ROWS[well // COLUMNS], well % COLUMNS + 1
        images.append(
            {
                "zarr_url": f"{zarr_dir}/plate_{plate}.zarr/{row}/{column:02d}/{field}",
                "attributes": {"plate": f"plate_{plate}.zarr", "well": f"{row}{column:02d}", "field": field},
                "types": {"is_3D": index % 2 == 0, "illumination_corrected": index % 5 == 0},
            }
        )
    return images


def resident_memory_mb(pid) -> str:
    if pid is None:
        return "n/a"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return f"{int(line.split()[1]) / 1024:.0f}"
    return "n/a"


def import_dataset(api: Api, project_id: int, size: int) -> tuple[str, list[dict], float]:
    """`(dataset url, images, seconds)` of a new dataset of `size` images."""
    zarr_dir = f"/benchmark/{size}"
    body = {"name": f"images-{size}", "zarr_dir": zarr_dir, "images": make_images(zarr_dir, size)}
    start = time.perf_counter()
    dataset_id = api.call("POST", f"/api/v2/project/{project_id}/dataset/import/", 201, json=body).json()["id"]
    return f"/api/v2/project/{project_id}/dataset/{dataset_id}/", body["images"], time.perf_counter() - start


def operations(api: Api, dataset: str, images: list[dict]) -> dict:
    """Each benchmarked operation, as a function of the run number."""
    size = len(images)
    last_page = math.ceil(size / PAGE_SIZE)
    url = dataset + "images/"
    target = images[size // 2]["zarr_url"]
    extra = f"/benchmark/{size}/extra/"

    def query(page=1, filters=None):
        return lambda run: api.call(
            "POST", f"{url}query/?page={page}&page_size={PAGE_SIZE}", 200, json={"filters": filters or {}}
        )

    return {
        "query: first page": query(),
        "query: attribute filter (well=B03)": query(filters={"attributes": {"well": "B03"}}),
        "query: type filter (is_3D=true)": query(filters={"types": {"is_3D": True}}),
        "query: last page": query(page=last_page),
        "query: middle page": query(page=max(1, last_page // 2)),
        "query: two filters (well=B03, is_3D=false)": query(
            filters={"attributes": {"well": "B03"}, "types": {"is_3D": False}}
        ),
        "add one image": lambda run: api.call(
            "POST", url, 201, json={"zarr_url": f"{extra}{run}", "attributes": {"well": "Z99"}}
        ),
        "patch one image": lambda run: api.call(
            "PATCH", url, 200, json={"zarr_url": target, "attributes": {"well": f"P{run}"}}
        ),
        "delete one image": lambda run: api.call("DELETE", url, 204, params={"zarr_url": f"{extra}{run}"}),
        "read dataset": lambda run: api.call("GET", dataset, 200),
    }


def median_ms(actions: list, runs: int) -> list[float]:
    """Median duration of each action; the actions take turns, so that a
    change in the machine's load affects all of them alike."""
    for action in actions:
        action(-1)  # warm-up
    durations = [[] for _ in actions]
    for run in range(runs):
        for index, action in enumerate(actions):
            start = time.perf_counter()
            action(run)
            durations[index].append((time.perf_counter() - start) * 1000)
    return [statistics.median(values) for values in durations]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="admin@fractal.xy")
    parser.add_argument("--password", default="1234")
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated image counts")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per operation (median reported)")
    parser.add_argument("--server-pid", type=int, help="read the server's VmRSS from /proc/<pid>/status")
    parser.add_argument("--cleanup", action="store_true", help="delete the benchmark project at the end")
    args = parser.parse_args(argv)

    api = Api(args.base_url, args.user, args.password)
    project = api.call("POST", "/api/v2/project/", 201, json={"name": f"benchmark-{time.time():.0f}"}).json()["id"]
    sizes = [int(size) for size in args.sizes.split(",")]
    rows: dict[str, list[str]] = {"import (once, s)": []}
    memory = []
    try:
        per_size = []
        for size in sizes:
            print(f"importing {size} images...", file=sys.stderr, flush=True)
            dataset, images, seconds = import_dataset(api, project, size)
            rows["import (once, s)"].append(f"{seconds:.2f}")
            memory.append(resident_memory_mb(args.server_pid))
            per_size.append(operations(api, dataset, images))
        for name in per_size[0]:
            print(f"timing {name}...", file=sys.stderr, flush=True)
            medians = median_ms([ops[name] for ops in per_size], args.runs)
            rows[name] = [f"{value:.1f}" for value in medians]
        memory_after = resident_memory_mb(args.server_pid)
    finally:
        if args.cleanup:
            api.call("DELETE", f"/api/v2/project/{project}/", 204)

    print(f"| median of {args.runs} runs, ms | " + " | ".join(f"{size:,} images" for size in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for name, values in rows.items():
        print(f"| {name} | " + " | ".join(values) + " |")
    print("| server VmRSS after each import, MB | " + " | ".join(memory) + " |")
    print(f"\nserver VmRSS at the end: {memory_after} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
