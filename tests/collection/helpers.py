"""Helpers of the task-collection tests: wheels, polling, a fake package index."""
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

MOCK_PACKAGE = Path(__file__).parents[1] / "mock_tasks"
MOCK_MANIFEST = MOCK_PACKAGE / "fractal_tasks_mock" / "__FRACTAL_MANIFEST__.json"
FINAL = ("OK", "failed")


LOG_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - [\w.]+ - (DEBUG|INFO|WARNING|ERROR) - (.*)$")
"""The first line of an activity-log entry: `<asctime> - <logger> - <LEVEL> - <message>`."""


def log_entries(log: str) -> list[tuple[str, str]]:
    """`(level, first line of the message)` of each entry of an activity log."""
    return [match.groups() for match in map(LOG_ENTRY.match, log.splitlines()) if match]


def level_of(log: str, message_start: str) -> str:
    """The level of the one entry whose message starts with `message_start`."""
    [level] = [level for level, message in log_entries(log) if message.startswith(message_start)]
    return level


def mock_manifest() -> dict:
    return json.loads(MOCK_MANIFEST.read_text())


def detail(response, status=422):
    assert response.status_code == status, response.json
    return response.json["detail"]


def field_error(response, loc, msg):
    assert [(e["loc"], e["msg"]) for e in detail(response)] == [(loc, msg)]


def empty_folder(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for child in path.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def wait_for_activity(
    client, headers, activity_id: int, timeout: float = 600, history: Optional[list] = None, interval: float = 1.0
) -> dict:
    """Poll the activity until it is OK or failed; `history` receives every answer seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/api/v2/task-group/activity/{activity_id}/", headers=headers)
        assert response.status_code == 200, response.json
        if history is not None:
            history.append(response.json)
        if response.json["status"] in FINAL:
            return response.json
        time.sleep(interval)
    raise AssertionError(f"activity {activity_id} not finished after {timeout}s")


def build_mock_wheel(root: Path) -> Path:
    """`fractal_tasks_mock-<version>-py3-none-any.whl` in `root/dist`, built from a copy of `tests/mock_tasks`.

    (A copy, so that the build leaves no `build/` or `*.egg-info` in the source tree.)
    """
    source = root / "source"
    shutil.copytree(MOCK_PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(root / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (root / "dist").glob("fractal_tasks_mock-*.whl")
    return wheel


def build_wheel(
    folder: Path,
    distribution: str,
    version: str,
    files: dict[str, str],
    requires: tuple[str, ...] = (),
    extras: dict[str, tuple[str, ...]] = {},
) -> Path:
    """A pure-Python wheel with the given files (paths relative to site-packages)."""
    dist_info = f"{distribution}-{version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {distribution}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {requirement}" for requirement in requires]
    for extra, requirements in extras.items():
        metadata.append(f"Provides-Extra: {extra}")
        metadata += [f'Requires-Dist: {requirement} ; extra == "{extra}"' for requirement in requirements]
    contents = {
        **files,
        f"{dist_info}/METADATA": "\n".join(metadata) + "\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: fractal-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in contents.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{distribution}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in contents.items():
            archive.writestr(name, text)
    return path


def task_package_files(module: str, manifest: Optional[dict], scripts: tuple[str, ...] = ("task.py",)) -> dict[str, str]:
    """The files of a tiny task package: `<module>/__init__.py`, scripts and the manifest."""
    files = {f"{module}/__init__.py": "", **{f"{module}/{script}": "print('hello')\n" for script in scripts}}
    if manifest is not None:
        files[f"{module}/__FRACTAL_MANIFEST__.json"] = json.dumps(manifest)
    return files


def one_task_manifest(executable: str = "task.py", **changes) -> dict:
    return {
        "manifest_version": "2",
        "task_list": [{"name": "task", "executable_non_parallel": executable}],
        **changes,
    }


class FakeIndex:
    """A local stand-in for the package index's JSON API (`<url>/<package>/json`).

    `documents` maps package names (as requested) to the JSON answered; other
    names get a 404; `requested` lists the paths asked for.
    """

    def __init__(self, documents: dict[str, object]):
        self.documents = documents
        self.requested: list[str] = []
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                index.requested.append(self.path)
                package = self.path.removeprefix("/pypi/").removesuffix("/json")
                if package not in index.documents:
                    self.send_response(404)
                    self.end_headers()
                    return
                document = index.documents[package]
                body = document if isinstance(document, bytes) else json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pypi"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeIndex":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def index_document(latest: str, releases: list[str]) -> dict:
    return {"info": {"version": latest}, "releases": {release: [] for release in releases}}
