"""Property-based fuzzing of the API with schemathesis, against a real server.

The server is `fractalctl start` on a throw-away PostgreSQL database prepared
by `fractalctl set-db`; the document is the one `fractalctl openapi` writes.
Requests are made as a regular user (active, verified, not a superuser),
created by the default admin over HTTP, who already owns a project, a
dataset with images, a dataset whose `zarr_dir` is `/` (so that generated
images are accepted), two tasks, a workflow and a finished job, so that small
ids reach real objects. The runs check that no answer is a server error, that
status codes, content types and bodies all agree with the document, and that
requests without credentials are refused.

The runs are bounded (examples per operation, one request at a time) and
derandomized (schemathesis' deterministic mode: Hypothesis' `derandomize`, no
example database), so that two runs make the same requests.
`FRACTAL_TEST_FUZZ_EXAMPLES` changes the number of examples per operation of
the main run.
"""
import json
import os
import subprocess
import sys

import pytest
import requests
from servers import BIN, wait_until

pytest.importorskip("schemathesis")

MAX_EXAMPLES = int(os.environ.get("FRACTAL_TEST_FUZZ_EXAMPLES", "20"))
RUN_TIMEOUT = 1800
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "ignored_auth",
]
EXCLUDED_PATHS = "/collect/"
"""Task collection installs packages from the package index: not for a fuzzer."""
SUPERUSER_PATHS = "^/(admin/v2/|auth/users/|auth/group/|auth/register/|api/settings/)"
"""Operations for superusers only (`api-v2.md` 0.3): the user gets 403 before any validation."""


def call(url: str, headers: dict, method: str, path: str, expected: int, **kwargs):
    response = requests.request(method, f"{url}{path}", headers=headers, timeout=30, **kwargs)
    assert response.status_code == expected, (method, path, response.status_code, response.text)
    return response.json() if response.content else None


@pytest.fixture(scope="module")
def deployment(real_servers):
    """The run lasts longer than the default 180 s of a token."""
    return real_servers(JWT_EXPIRE_SECONDS="86400")


@pytest.fixture(scope="module")
def openapi_file(deployment):
    base = deployment.folder
    path = base / "openapi.json"
    done = deployment.fractalctl("openapi", "-f", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(path.read_text())
    assert document["openapi"].startswith("3.1")
    fuzzed = base / "openapi-for-schemathesis.json"
    fuzzed.write_text(json.dumps(without_prefix_items(document)))
    return fuzzed


def without_prefix_items(schema):
    """The document with each tuple (`prefixItems`) relaxed to an array of any of its item types.

    Schemathesis 4.32 rejects, as an invalid schema, a `prefixItems` nested in
    `items` (e.g. `list[tuple[int, str]]`), although it is valid OpenAPI 3.1.
    """
    if isinstance(schema, list):
        return [without_prefix_items(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: without_prefix_items(value) for key, value in schema.items()}
    if "prefixItems" in result and "items" not in result:
        result["items"] = {"anyOf": result.pop("prefixItems")}
    return result


def seed(url: str, headers: dict, base) -> None:
    """Objects of every kind for the user, with small ids (1, 2, ...)."""
    zarr_dir = str(base / "zarr")
    project = call(url, headers, "POST", "/api/v2/project/", 201, json={"name": "fuzz project"})
    p = project["id"]
    dataset = call(
        url, headers, "POST", f"/api/v2/project/{p}/dataset/", 201, json={"name": "fuzz dataset", "zarr_dir": zarr_dir}
    )
    d = dataset["id"]
    for index in range(3):
        call(
            url, headers, "POST", f"/api/v2/project/{p}/dataset/{d}/images/", 201,
            json={"zarr_url": f"{zarr_dir}/plate.zarr/{index}", "attributes": {"well": f"A0{index}"},
                  "types": {"is_3D": index % 2 == 0}},
        )
    # Any absolute zarr_url is within this one: generated images are accepted.
    call(url, headers, "POST", f"/api/v2/project/{p}/dataset/", 201, json={"name": "root dataset", "zarr_dir": "/"})
    task = call(
        url, headers, "POST", "/api/v2/task/", 201,
        json={"name": "fuzz task", "version": "1", "command_non_parallel": f"{sys.executable} -c pass"},
    )
    call(
        url, headers, "POST", "/api/v2/task/?private=true", 201,
        json={"name": "fuzz parallel task", "command_parallel": f"{sys.executable} -c pass"},
    )
    workflow = call(url, headers, "POST", f"/api/v2/project/{p}/workflow/", 201, json={"name": "fuzz workflow"})
    w = workflow["id"]
    call(url, headers, "POST", f"/api/v2/project/{p}/workflow/{w}/wftask/?task_id={task['id']}", 201, json={})
    job = call(
        url, headers, "POST", f"/api/v2/project/{p}/job/submit/?workflow_id={w}&dataset_id={d}", 202, json={}
    )
    wait_until(
        lambda: call(url, headers, "GET", f"/api/v2/project/{p}/job/{job['id']}/", 200)["status"] != "submitted",
        120,
        "the seed job to end",
    )


@pytest.fixture(scope="module")
def user_headers(server, server_user, deployment) -> dict:
    headers = server.login(server_user)
    seed(server.url, headers, deployment.folder)
    return headers


def schemathesis(server, openapi_file, headers, tmp_path, *options: str) -> None:
    """Run `st run` on the document against the server; fail with its report."""
    argv = [
        str(BIN / "st"),
        "run",
        str(openapi_file),
        "--url", server.url,
        "--header", f"Authorization:{headers['Authorization']}",
        "--checks", ",".join(CHECKS),
        "--generation-deterministic",
        "--workers", "1",
        "--request-timeout", "30",
        "--max-redirects", "0",
        "--no-color",
        "--output-truncate", "false",
        "--report", "junit",
        "--report-dir", str(tmp_path / "report"),
        *options,
    ]
    done = subprocess.run(
        argv, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    output = done.stdout + done.stderr
    print(output)  # shown by `pytest -rP`
    assert done.returncode == 0, output[-60000:] + "\n--- server log ---\n" + server.log()[-20000:]
    assert "Unhandled error while answering a request" not in server.log(), server.log()[-20000:]


def test_user_operations_conform_to_the_document(server, openapi_file, user_headers, tmp_path):
    schemathesis(
        server, openapi_file, user_headers, tmp_path,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES),
        "--exclude-path-regex", f"{EXCLUDED_PATHS}|{SUPERUSER_PATHS}",
    )


def test_superuser_operations_refuse_the_user_as_documented(server, openapi_file, user_headers, tmp_path):
    """403 before anything else: a few examples of each are enough."""
    schemathesis(
        server, openapi_file, user_headers, tmp_path,
        "--phases", "examples,fuzzing",
        "--max-examples", "3",
        "--include-path-regex", SUPERUSER_PATHS,
        "--exclude-path-regex", EXCLUDED_PATHS,
    )
