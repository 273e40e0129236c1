"""Drive a running server through a whole Fractal session, over HTTP only.

Collects the example task package (the mock tasks of the test suite, built
into a wheel), then creates a project, a dataset and a three-task workflow
(create images -> maximum-intensity projection -> measure) and runs it.
Run by `scripts/demo`; safe to run again on the same server.
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLE_PACKAGE = REPOSITORY / "tests" / "mock_tasks"
PACKAGE_NAME = "fractal-tasks-mock"


class Server:
    def __init__(self, url: str, user: str, password: str):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        token = self.session.post(
            f"{self.url}/auth/token/login/", data={"username": user, "password": password}, timeout=30
        )
        token.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def call(self, method: str, path: str, expected: int, **kwargs):
        response = self.session.request(method, f"{self.url}{path}", timeout=60, **kwargs)
        if response.status_code != expected:
            sys.exit(f"{method} {path} answered {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def wait(self, path: str, field: str, running: tuple[str, ...], what: str) -> dict:
        while True:
            item = self.call("GET", path, 200)
            if item[field] not in running:
                return item
            print(f"  ... {what} is {item[field]}")
            time.sleep(2)


def example_tasks(server: Server) -> dict[str, int]:
    """Task ids by name, collecting the example package if needed."""
    groups = server.call("GET", "/api/v2/task-group/?only_owner=true&only_active=true", 200)
    for group in groups:
        if group["pkg_name"] == PACKAGE_NAME:
            print(f"Example tasks already collected (task group {group['id']}).")
            return {task["name"]: task["id"] for task in group["task_list"]}
    wheel_dir = Path(tempfile.mkdtemp(prefix="fractal-demo-wheel-"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheel_dir), str(EXAMPLE_PACKAGE)],
        check=True,
    )
    wheel = next(wheel_dir.glob("*.whl"))
    print(f"Collecting the example task package from {wheel} ...")
    activity = server.call("POST", "/api/v2/task/collect/pip/", 202, json={"package": str(wheel)})
    activity = server.wait(
        f"/api/v2/task-group/activity/{activity['id']}/", "status", ("pending", "ongoing"), "collection"
    )
    if activity["status"] != "OK":
        sys.exit(f"Collection failed:\n{activity['log']}")
    group = server.call("GET", f"/api/v2/task-group/{activity['taskgroupv2_id']}/", 200)
    return {task["name"]: task["id"] for task in group["task_list"]}


def run_example_workflow(server: Server, tasks: dict[str, int], data_dir: Path) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    project = server.call("POST", "/api/v2/project/", 201, json={"name": f"demo {stamp}"})
    base = f"/api/v2/project/{project['id']}"
    zarr_dir = data_dir / "zarr" / f"demo-{stamp}"
    dataset = server.call("POST", f"{base}/dataset/", 201, json={"name": "plate", "zarr_dir": str(zarr_dir)})
    workflow = server.call("POST", f"{base}/workflow/", 201, json={"name": "example"})
    steps = [
        ("create_images", {"args_non_parallel": {"num_images": 4}}),
        ("mip_compound", {}),
        (
            "generic_parallel",
            {
                "args_parallel": {"attributes": {"measured": True}},
                "input_filters": {"attributes": {}, "types": {"is_3D": False}},
            },
        ),
    ]
    for name, body in steps:
        server.call("POST", f"{base}/workflow/{workflow['id']}/wftask/?task_id={tasks[name]}", 201, json=body)
    print(f"Running workflow '{workflow['name']}' on dataset '{dataset['name']}' ...")
    job = server.call(
        "POST", f"{base}/job/submit/?workflow_id={workflow['id']}&dataset_id={dataset['id']}", 202, json={}
    )
    job = server.wait(f"{base}/job/{job['id']}/", "status", ("submitted",), "job")
    images = server.call("POST", f"{base}/dataset/{dataset['id']}/images/query/", 200, json={})
    print(f"\nJob {job['id']} ended: {job['status']}")
    if job["status"] != "done":
        sys.exit(job["log"])
    print(f"Dataset '{dataset['name']}' now has {images['total_count']} images under {zarr_dir}:")
    for image in images["images"]:
        print(f"  {image['zarr_url']}  types={image['types']}")
    print(f"Job folder (logs, arguments, outputs): {job['working_dir']}[.zip]")
    print(f"Open {server.url}/api/v2/project/{project['id']}/job/{job['id']}/ with a token, or use the `fractal` client.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="admin@fractal.xy")
    parser.add_argument("--password", default="1234")
    parser.add_argument("--data-dir", type=Path, default=Path("fractal-server-data"))
    options = parser.parse_args()
    server = Server(options.url, options.user, options.password)
    run_example_workflow(server, example_tasks(server), options.data_dir.resolve())


if __name__ == "__main__":
    main()
