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
from pathlib import Path

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


REFERENCE_DOCUMENT = Path(__file__).parent / "reference-openapi-2.9.2.json"
"""The reference's own document (fractal-server 2.9.2): the contract, as test data."""
UNDOCUMENTED_ERRORS = ("400", "401", "403", "404", "405", "413")
"""Statuses the reference answers without declaring them (`api-v2.md` 0.3-0.4: 401/403 of every
protected operation, 404 and 403 of objects named by id, 400/405 of some checks), and our 413."""


STATUS_ANSWERED = {"/logout/": "204", "/deactivate/": "202", "/reactivate/": "202"}
EMPTY_OR_FILE = {"/logout/": "204", "/download/": "200", "/dataset/{dataset_id}/images/": "201"}


@pytest.fixture(scope="module")
def reference_openapi_file(deployment):
    """The reference's document, with what the reference itself does not follow in it made explicit.

    * The `/api/v1` and `/admin/v1` trees are left out: this server implements the v2 API only.
    * Each operation may also answer the errors of `UNDOCUMENTED_ERRORS`, as `{"detail": ...}`.
    * A 422 is either the documented list of validation errors or an application error whose
      `detail` is a string or a list of strings (e.g. "Image with zarr_url ... already in
      DatasetV2 ..."): the reference answers those too (`api-v2.md` 0.4.1).
    * pydantic v1 documents an `Optional[X]` field as `X` (not nullable) although the reference
      answers null for it: a property that is not required may be null.
    * Operations whose answer the reference documents as a JSON 200 but which answer otherwise
      (`api-v2.md`): the logout endpoints (204, empty), deactivate/reactivate (202), a new image
      (201, empty), job downloads (a zip): `EMPTY_OR_FILE` and `STATUS_ANSWERED`.
    """
    base = deployment.folder
    document = json.loads(REFERENCE_DOCUMENT.read_text())
    document["paths"] = {
        path: operations for path, operations in document["paths"].items()
        if not path.startswith(("/api/v1/", "/admin/v1/"))
    }
    error = {"application/json": {"schema": {"type": "object", "required": ["detail"]}}}
    validation = document["components"]["schemas"]["HTTPValidationError"]
    validation_or_application = {
        "anyOf": [
            {"$ref": "#/components/schemas/HTTPValidationError"},
            {"type": "object", "required": ["detail"], "properties": {"detail": {"anyOf": [
                {"type": "string"}, {"type": "array", "items": {"type": "string"}}]}}},
        ]
    }
    assert validation["properties"]["detail"]["type"] == "array"
    for schema in document["components"]["schemas"].values():
        required = set(schema.get("required", []))
        for name, property_schema in schema.get("properties", {}).items():
            if name not in required:
                schema["properties"][name] = {"anyOf": [property_schema, {"type": "null"}]}
    for path, operations in document["paths"].items():
        for operation in operations.values():
            responses = operation["responses"]
            answered = next((status for suffix, status in STATUS_ANSWERED.items() if path.endswith(suffix)), None)
            if answered is not None:
                responses[answered] = responses.pop("200")
            for status in UNDOCUMENTED_ERRORS:
                responses.setdefault(status, {"description": "Error", "content": error})
            if "422" in responses:
                responses["422"]["content"]["application/json"]["schema"] = validation_or_application
            for suffix, status in EMPTY_OR_FILE.items():
                if path.endswith(suffix) and status in responses:
                    responses[status].pop("content", None)
    patched = base / "reference-openapi-for-schemathesis.json"
    patched.write_text(json.dumps(without_prefix_items(document)))
    return patched


@pytest.mark.parametrize("document", ["openapi_file", "reference_openapi_file"])
def test_user_operations_conform_to_the_document(request, server, document, user_headers, tmp_path):
    """Requests of our document, then of the reference's, each judged by its own document."""
    schemathesis(
        server, request.getfixturevalue(document), user_headers, tmp_path,
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
