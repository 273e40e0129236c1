"""What the fuzzing found, pinned down as plain tests (no schemathesis needed).

* Ids beyond PostgreSQL's `integer` range, in the path, the query or the
  body, were a 500 (`integer out of range`): now a 422 validation error.
* Strings with NUL characters or unpaired surrogates, and non-finite
  numbers, were a 500 when they reached the database: now a 422.
* The document did not declare the 404/403 of operations on objects named by
  id, the 400 of the login endpoints, nor the 405 of `DELETE /api/v2/task/{id}/`.
"""
import pytest

from fractal_server.http.openapi import build_openapi

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
        assert "400" in paths[path]["post"]["responses"]
