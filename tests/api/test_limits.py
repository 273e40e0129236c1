"""Limits: the size of a request body (413) and the length of names and other strings (422)."""
import json

import pytest

from fractal_server.config.settings import Settings
from fractal_server.http.openapi import build_openapi
from fractal_server.schemas.validators import MAX_NAME_LENGTH, MAX_QUERY_LENGTH, MAX_TEXT_LENGTH


@pytest.fixture
def user(make_user):
    return make_user("limits@example.org", is_verified=True)[1]


def too_long(limit: int) -> dict:
    return {"loc": None, "msg": f"ensure this value has at most {limit} characters",
            "type": "value_error.any_str.max_length", "ctx": {"limit_value": limit}}


def errors_without_loc(response) -> list:
    assert response.status_code == 422, response.json
    return [{**error, "loc": None} for error in response.json["detail"]]


def import_body(images: int) -> bytes:
    """A dataset import as a real client sends it: long zarr URLs, origins and a few attributes."""
    base = "/data/active/fractal/some-user/project-42"
    entries = []
    for index in range(images):
        plate = f"20240115_experiment_{index // 3000:03d}_plate.zarr"
        row, column = "ABCDEFGHIJKLMNOP"[(index // 24) % 16], index % 24 + 1
        url = f"{base}/{plate}/{row}/{column:02d}/{index % 4}_illum_corr"
        entries.append({
            "zarr_url": url,
            "origin": url.removesuffix("_illum_corr"),
            "attributes": {"well": f"{row}{column:02d}", "plate": plate, "acquisition": index % 4},
            "types": {"is_3D": False, "illumination_correction": True},
        })
    return json.dumps({"name": "large", "zarr_dir": base, "images": entries}).encode()


def test_default_body_limit_fits_an_import_of_300000_images():
    size = len(import_body(300_000))
    assert size > 100 * 1024 * 1024  # realistic
    assert Settings().FRACTAL_MAX_REQUEST_BODY_BYTES > 2 * size


def test_larger_bodies_are_refused_with_413(app, client, user, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1000)
    body = b'{"name": "p"}'
    response = client.post("/api/v2/project/", data=body + b" " * (1000 - len(body)), content_type="application/json", headers=user)
    assert response.status_code == 201
    response = client.post("/api/v2/project/", data=body + b" " * 1000, content_type="application/json", headers=user)
    assert (response.status_code, response.json) == (413, {"detail": "Request body too large: the limit is 1000 bytes."})
    assert len(client.get("/api/v2/project/", headers=user).json) == 1
    # Authentication still comes first.
    assert client.post("/api/v2/project/", data=body + b" " * 1000, content_type="application/json").status_code == 401


def test_names_are_limited(client, user):
    response = client.post("/api/v2/project/", json={"name": "n" * MAX_NAME_LENGTH}, headers=user)
    assert response.status_code == 201
    project = response.json["id"]
    for url, body in [
        ("/api/v2/project/", {"name": "n" * (MAX_NAME_LENGTH + 1)}),
        (f"/api/v2/project/{project}/dataset/", {"name": "n" * (MAX_NAME_LENGTH + 1), "zarr_dir": "/z"}),
        (f"/api/v2/project/{project}/workflow/", {"name": "n" * (MAX_NAME_LENGTH + 1)}),
        ("/api/v2/task/", {"name": "n" * (MAX_NAME_LENGTH + 1), "command_parallel": "python3 run.py"}),
    ]:
        assert errors_without_loc(client.post(url, json=body, headers=user)) == [too_long(MAX_NAME_LENGTH)], url
    response = client.patch(f"/api/v2/project/{project}/", json={"name": "n" * (MAX_NAME_LENGTH + 1)}, headers=user)
    assert response.json["detail"][0]["loc"] == ["body", "name"]
    assert client.get(f"/api/v2/project/{project}/", headers=user).json["name"] == "n" * MAX_NAME_LENGTH


def test_other_strings_are_limited(client, user):
    long_text = "x" * (MAX_TEXT_LENGTH + 1)
    body = {"name": "t", "command_parallel": "python3 run.py", "docs_info": long_text}
    response = client.post("/api/v2/task/", json=body, headers=user)
    assert errors_without_loc(response) == [too_long(MAX_TEXT_LENGTH)]
    assert response.json["detail"][0]["loc"] == ["body", "docs_info"]
    response = client.post("/api/v2/task/", json={**body, "docs_info": long_text[1:]}, headers=user)
    assert response.status_code == 201
    project = client.post("/api/v2/project/", json={"name": "p"}, headers=user).json["id"]
    dataset = client.post(f"/api/v2/project/{project}/dataset/", json={"name": "d", "zarr_dir": "/z"}, headers=user)
    images = f"/api/v2/project/{project}/dataset/{dataset.json['id']}/images/"
    response = client.post(images, json={"zarr_url": "/z/" + long_text}, headers=user)
    assert errors_without_loc(response) == [too_long(MAX_TEXT_LENGTH)]
    response = client.get(f"/api/v2/task/?category={'c' * (MAX_QUERY_LENGTH + 1)}", headers=user)
    assert errors_without_loc(response) == [too_long(MAX_QUERY_LENGTH)]
    assert response.json["detail"][0]["loc"] == ["query", "category"]
    assert client.get(f"/api/v2/task/?category={'c' * MAX_QUERY_LENGTH}", headers=user).json == []


def test_the_document_declares_the_limits(app):
    paths = build_openapi(app)["paths"]

    def body_schema(path):
        return paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]

    assert body_schema("/api/v2/project/")["properties"]["name"]["maxLength"] == MAX_NAME_LENGTH
    assert body_schema("/api/v2/task/")["properties"]["docs_info"]["anyOf"][0]["maxLength"] == MAX_TEXT_LENGTH
