"""What the fuzzing found, pinned down as plain tests (no schemathesis needed).

* Ids beyond PostgreSQL's `integer` range, in the path, the query or the
  body, were a 500 (`integer out of range`): now a 422 validation error.
* Strings with NUL characters or unpaired surrogates, and non-finite
  numbers, were a 500 when they reached the database: now a 422.
* The document did not declare the 404/403 of operations on objects named by
  id, the 400 of the login endpoints, nor the 405 of `DELETE /api/v2/task/{id}/`.
* Bodies nested 100,000 levels deep, integers with thousands of digits and
  bytes that are not UTF-8 were a 500: now the reference's 400 (its parser
  gives up on them too). Documents nested deeper than the server can answer
  are a 422.

The last tests send such input to every declared operation.
"""
import json

import pytest

from fractal_server.http.openapi import build_openapi
from fractal_server.http.routing import MAX_JSON_DEPTH

TOO_LARGE = 2**31
NUL = "a\u0000b"


@pytest.fixture
def user(make_user):
    return make_user("fuzz-findings@example.org", is_verified=True)[1]


@pytest.fixture
def project_id(client, user):
    response = client.post("/api/v2/project/", json={"name": "p"}, headers=user)
    return response.json["id"]


def detail(response):
    assert response.status_code == 422, response.json
    return response.json["detail"]


@pytest.mark.parametrize("value", [TOO_LARGE, -TOO_LARGE - 1])
def test_path_ids_out_of_range(client, user, value):
    [error] = detail(client.get(f"/api/v2/project/{value}/", headers=user))
    assert error["loc"] == ["path", "project_id"]
    assert error["type"] in ("value_error.number.not_le", "value_error.number.not_ge")
    assert error["ctx"] == {"limit_value": 2**31 - 1 if value > 0 else -(2**31)}


def test_largest_id_is_just_not_found(client, user):
    response = client.get(f"/api/v2/project/{2**31 - 1}/", headers=user)
    assert (response.status_code, response.json) == (404, {"detail": "Project not found"})


def test_query_and_body_ids_out_of_range(client, user, project_id):
    response = client.get(f"/api/v2/project/{project_id}/status/?dataset_id={TOO_LARGE}&workflow_id=1", headers=user)
    [error] = detail(response)
    assert (error["loc"], error["msg"]) == (
        ["query", "dataset_id"], "ensure this value is less than or equal to 2147483647"
    )
    response = client.get(f"/api/v2/task-group/activity/?taskgroupv2_id={TOO_LARGE}", headers=user)
    assert detail(response)[0]["loc"] == ["query", "taskgroupv2_id"]
    response = client.post(f"/api/v2/task/?user_group_id={TOO_LARGE}", json={"name": "t", "command_parallel": "x"}, headers=user)
    assert detail(response)[0]["loc"] == ["query", "user_group_id"]


@pytest.mark.parametrize(
    ("body", "loc", "msg"),
    [
        ({"name": NUL}, ["body", "name"], "string cannot contain NUL (0x00) characters"),
        ({"name": "\udc00"}, ["body", "name"], "string is not valid unicode"),
    ],
)
def test_strings_the_database_cannot_store(client, user, project_id, body, loc, msg):
    response = client.post(f"/api/v2/project/{project_id}/workflow/", json=body, headers=user)
    assert detail(response) == [{"loc": loc, "msg": msg, "type": "value_error"}]


def test_unstorable_values_inside_objects_and_queries(client, user, project_id):
    response = client.post(
        f"/api/v2/project/{project_id}/dataset/", json={"name": "d", "zarr_dir": "/z"}, headers=user
    )
    dataset = f"/api/v2/project/{project_id}/dataset/{response.json['id']}"
    response = client.post(
        f"{dataset}/images/",
        data='{"zarr_url": "/z/a", "attributes": {"k\\u0000": 1, "x": NaN}}',
        content_type="application/json",
        headers=user,
    )
    assert [error["loc"] for error in detail(response)] == [
        ["body", "attributes", "k\x00"],
        ["body", "attributes", "x"],
    ]
    response = client.get(f"/api/v2/task-group/activity/?pkg_name={NUL}", headers=user)
    assert detail(response)[0]["loc"] == ["query", "pkg_name"]
    response = client.post("/api/v2/project/", json={"name": "fine ü"}, headers=user)
    assert response.status_code == 201


def test_document_declares_the_answers(app):
    paths = build_openapi(app)["paths"]
    project = paths["/api/v2/project/{project_id}/"]["get"]
    assert {"200", "401", "403", "404", "422"} <= set(project["responses"])
    assert project["parameters"][0]["schema"] == {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
    assert "404" in paths["/api/v2/task/"]["post"]["responses"]  # user_group_id in the query
    assert "404" not in paths["/api/v2/project/"]["get"]["responses"]
    assert set(paths["/api/v2/task/{task_id}/"]["delete"]["responses"]) >= {"405"}
    assert "200" not in paths["/api/v2/task/{task_id}/"]["delete"]["responses"]
    for path in ("/auth/token/login/", "/auth/login/"):
        assert {"400", "413"} <= set(paths[path]["post"]["responses"])
    assert {"400", "413"} <= set(paths["/api/v2/project/"]["post"]["responses"])
    assert not {"400", "413"} & set(paths["/api/v2/project/"]["get"]["responses"])


PARSE_ERROR = {"detail": "There was an error parsing the body"}
UNPARSABLE_BODIES = {
    "nested 100,000 levels": b"[" * 100_000 + b"]" * 100_000,
    "objects nested 100,000 levels": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "an integer of 5,000 digits": b'{"name": ' + b"1" * 5000 + b"}",
    "invalid UTF-8": b'{"name": "\xff\xfe"}',
}


def nested(depth: int):
    return json.loads('{"k":' * (depth - 1) + "1" + "}" * (depth - 1))


@pytest.mark.parametrize("kind", UNPARSABLE_BODIES)
def test_unparsable_bodies_are_400_on_every_operation(client, admin, declared_operations, kind):
    checked = 0
    for method, url, spec in declared_operations:
        if spec.body is None:
            continue
        response = client.open(url, method=method, data=UNPARSABLE_BODIES[kind], content_type="application/json", headers=admin)
        assert (response.status_code, response.json) == (400, PARSE_ERROR), (method, url)
        checked += 1
    assert checked >= 30


def test_documents_nested_deeper_than_answers_allow_are_422(client, admin):
    body = {"name": "deep", "command_parallel": "python3 run.py", "meta_parallel": nested(MAX_JSON_DEPTH)}
    response = client.post("/api/v2/task/", json=body, headers=admin)
    assert response.status_code == 201
    assert client.get(f"/api/v2/task/{response.json['id']}/", headers=admin).json["meta_parallel"] == body["meta_parallel"]
    body = {**body, "name": "deeper", "meta_parallel": nested(MAX_JSON_DEPTH + 1)}
    response = client.post("/api/v2/task/", json=body, headers=admin)
    assert (response.status_code, response.json["detail"]) == (422, [{
        "loc": ["body", "meta_parallel"],
        "msg": f"ensure this value is nested at most {MAX_JSON_DEPTH} levels deep",
        "type": "value_error",
    }])
    body["meta_parallel"] = nested(900)  # parsed, but not storable
    assert client.post("/api/v2/task/", json=body, headers=admin).status_code == 422


ODD_BODIES = {
    "huge float": b'{"name": 1e400, "zarr_dir": 1e400, "filters": {"attributes": {"a": -1e400}}}',
    "duplicate keys": b'{"name": "first", "name": "second", "zarr_dir": "/z", "zarr_dir": "/y"}',
    "NUL characters": b'{"name": "a\\u0000b", "zarr_url": "/z/\\u0000", "attributes": {"\\u0000": 1}}',
    "lone surrogates": b'{"name": "\\udc00", "zarr_dir": "/\\ud800"}',
}


@pytest.mark.parametrize("kind", ODD_BODIES)
@pytest.mark.parametrize("content_type", ["application/json", "application/octet-stream", "image/png", ""])
def test_odd_bodies_are_never_a_server_error(client, admin, declared_operations, kind, content_type):
    for method, url, spec in declared_operations:
        if spec.body is None and spec.form is None:
            continue
        response = client.open(url, method=method, data=ODD_BODIES[kind], content_type=content_type or None, headers=admin)
        assert response.status_code < 500, (method, url, response.get_data(as_text=True))
        assert response.mimetype == "application/json" or response.status_code in (200, 201, 204), (method, url)


def test_duplicate_keys_keep_the_last_value(client, admin):
    body = b'{"name": "first", "name": "second"}'
    response = client.post("/api/v2/project/", data=body, content_type="application/json", headers=admin)
    assert (response.status_code, response.json["name"]) == (201, "second")


def test_nul_in_paths_and_queries_is_never_a_server_error(client, admin, declared_operations):
    checked = 0
    for method, url, spec in declared_operations:
        path, _, query = url.partition("?")
        urls = []
        if "/1/" in path:
            urls.append(path.replace("/1/", "/1%00/", 1) + (f"?{query}" if query else ""))
        if spec.query is not None:
            for name in spec.query.model_fields:
                urls.append(f"{path}?{query}&{name}=a%00b" if query else f"{path}?{name}=a%00b")
        urls.append(f"{path}%00/")
        for odd in urls:
            response = client.open(odd, method=method, headers=admin)
            assert response.status_code < 500, (method, odd)
            assert response.status_code in (307, 404, 405, 422) or response.status_code < 300, (method, odd, response.json)
            checked += 1
    assert checked > 100
