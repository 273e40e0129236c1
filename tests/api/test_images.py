"""Dataset images: add, query, patch, delete (`api-v2.md` section 6), and the image store."""
import math
import random

import pytest
from sqlalchemy import select

from fractal_server.db import db
from fractal_server.db.models import DatasetV2
from fractal_server.db.models.projects import ImageAttributeCount, ImageTypeCount
from fractal_server.images import plans, store

from .factories import create_project
from .test_datasets import create_dataset, dataset_url, single_error


@pytest.fixture
def setup(client, alice):
    """`(headers, project_id, dataset_id)` of an empty dataset with zarr_dir `/zarr`."""
    _, headers = alice
    project = create_project(client, headers)
    return headers, project, create_dataset(client, headers, project)["id"]


def images_url(project_id, dataset_id):
    return dataset_url(project_id, dataset_id) + "images/"


def post_image(client, setup, zarr_url, **body):
    headers, project, dataset = setup
    return client.post(images_url(project, dataset), json={"zarr_url": zarr_url, **body}, headers=headers)


def query(client, setup, body=None, expect=200, **params):
    headers, project, dataset = setup
    url = images_url(project, dataset) + "query/"
    if params:
        url += "?" + "&".join(f"{key}={value}" for key, value in params.items())
    response = client.post(url, json=body, headers=headers) if body is not None else client.post(url, headers=headers)
    assert response.status_code == expect, response.json
    return response.json


def urls(page):
    return [image["zarr_url"] for image in page["images"]]


def image(zarr_url, attributes=None, types=None, origin=None):
    return {"zarr_url": zarr_url, "origin": origin, "attributes": attributes or {}, "types": types or {}}


def matches(img, *filters):
    """The reference matching rules (`runner-v2.md` section 3), in plain Python."""
    for item in filters:
        for key, value in item.get("types", {}).items():
            if img["types"].get(key, False) != value:
                return False
        for key, value in item.get("attributes", {}).items():
            if value is not None and (key not in img["attributes"] or img["attributes"][key] != value):
                return False
    return True


def reference_summary(images):
    attributes, types = {}, set()
    for img in images:
        for key, value in img["attributes"].items():
            values = attributes.setdefault(key, [])
            if value not in values:
                values.append(value)
        types.update(img["types"])
    return attributes, types


def same_values(actual: dict, expected: dict) -> bool:
    """Attribute summaries are equal up to order (and Python equality)."""
    return actual.keys() == expected.keys() and all(
        len(actual[key]) == len(expected[key]) and all(v in expected[key] for v in actual[key]) for key in actual
    )


# --- Add -------------------------------------------------------------------------


def test_add_image(client, setup):
    response = post_image(client, setup, "/zarr/a/", origin="/raw//a", attributes={" well ": "A01"},
                          types={"is_3D": "yes"}, unknown="ignored")
    assert response.status_code == 201
    assert (response.data, response.content_type) == (b"", None)
    page = query(client, setup)
    assert page["images"] == [image("/zarr/a", {"well": "A01"}, {"is_3D": True}, origin="/raw/a")]
    assert post_image(client, setup, "/zarr/b").status_code == 201
    assert urls(query(client, setup)) == ["/zarr/a", "/zarr/b"]


def test_add_image_errors(client, setup):
    headers, project, dataset = setup
    assert post_image(client, setup, "/zarr/a").status_code == 201
    cases = [
        ("/other/a", 422, "Cannot create image with zarr_url which is not relative to /zarr."),
        ("/zarr/", 422, "`SingleImage.zarr_url` cannot be equal to `Dataset.zarr_dir`: /zarr"),
        ("/zarr//a/", 422, ["Image with zarr_url '/zarr/a' already in DatasetV2 1"]),
    ]
    for zarr_url, status, detail in cases:
        response = post_image(client, setup, zarr_url)
        assert (response.status_code, response.json) == (status, {"detail": detail}), zarr_url
    # Plain string prefix [quirk]: "/zarr" accepts "/zarrXYZ/b".
    assert post_image(client, setup, "/zarrXYZ/b").status_code == 201
    validation = [
        ({"zarr_url": "s3://x"}, ["body", "zarr_url"], "S3 handling not implemented yet"),
        ({"zarr_url": "x"}, ["body", "zarr_url"], "URLs must begin with '/' or 's3'."),
        ({"zarr_url": "/zarr/c", "origin": "x"}, ["body", "origin"], "URLs must begin with '/' or 's3'."),
        ({}, ["body", "zarr_url"], "field required"),
        ({"zarr_url": "/zarr/c", "attributes": {"a": None}}, ["body", "attributes"],
         "SingleImage.attributes[a] must be a scalar (int, float, str or bool). Given None (<class 'NoneType'>)"),
        ({"zarr_url": "/zarr/c", "attributes": {"a": [1]}}, ["body", "attributes"],
         "SingleImage.attributes[a] must be a scalar (int, float, str or bool). Given [1] (<class 'list'>)"),
        ({"zarr_url": "/zarr/c", "attributes": {"a": 1, "a ": 2}}, ["body", "attributes"],
         "Dictionary contains multiple identical keys"),
        ({"zarr_url": "/zarr/c", "types": {"a": "maybe"}}, ["body", "types", "a"],
         "value could not be parsed to a boolean"),
    ]
    for body, loc, msg in validation:
        response = client.post(images_url(project, dataset), json=body, headers=headers)
        assert single_error(response) == (loc, msg), body
    assert query(client, setup)["total_count"] == 2


def test_image_endpoints_access(client, setup, bob):
    headers, project, dataset = setup
    _, bob_headers = bob
    other_project = create_project(client, headers, "other")
    requests = [
        ("POST", "", {"zarr_url": "/zarr/a"}),
        ("POST", "query/", None),
        ("PATCH", "", {"zarr_url": "/zarr/a"}),
        ("DELETE", "?zarr_url=/zarr/a", None),
    ]
    for method, suffix, body in requests:
        cases = [
            (images_url(999, dataset), headers, 404, "Project not found"),
            (images_url(project, dataset), bob_headers, 403, f"Not allowed on project {project}"),
            (images_url(project, 999), headers, 404, "Dataset not found"),
            (images_url(other_project, dataset), headers, 422,
             f"Invalid project_id={other_project} for dataset_id={dataset}"),
        ]
        for url, user_headers, status, detail in cases:
            response = client.open(url + suffix, method=method, json=body, headers=user_headers)
            assert (response.status_code, response.json) == (status, {"detail": detail}), (method, url)
        response = client.open(images_url(project, dataset) + suffix, method=method, json=body)
        assert response.status_code == 401


# --- Query -------------------------------------------------------------------------


def test_query_without_body_or_filters(client, setup):
    for name in "abc":
        post_image(client, setup, f"/zarr/{name}", attributes={"name": name}, types={name: True})
    expected = {
        "total_count": 3,
        "page_size": 3,
        "current_page": 1,
        "types": ["a", "b", "c"],
        "images": [image(f"/zarr/{n}", {"name": n}, {n: True}) for n in "abc"],
    }
    for body in (None, "null", {}, {"filters": {}}, {"zarr_url": None}, {"unknown": 1},
                 {"filters": {"attributes": {"name": None}}}):
        headers, project, dataset = setup
        url = images_url(project, dataset) + "query/"
        if body == "null":
            response = client.post(url, data="null", content_type="application/json", headers=headers)
        else:
            response = client.post(url, json=body, headers=headers) if body is not None else client.post(url, headers=headers)
        page = response.json
        assert response.status_code == 200, body
        assert sorted(page.pop("attributes")["name"]) == ["a", "b", "c"]
        page["types"] = sorted(page["types"])
        assert page == expected, body


def test_query_paging(client, setup):
    for index in range(7):
        post_image(client, setup, f"/zarr/{index}")
    all_urls = [f"/zarr/{index}" for index in range(7)]
    page = query(client, setup, page_size=3)
    assert (page["total_count"], page["page_size"], page["current_page"], urls(page)) == (7, 3, 1, all_urls[:3])
    assert urls(query(client, setup, page_size=3, page=2)) == all_urls[3:6]
    last = query(client, setup, page_size=3, page=3)
    assert (last["current_page"], urls(last)) == (3, all_urls[6:])
    clamped = query(client, setup, page_size=3, page=1000)
    assert (clamped["current_page"], urls(clamped)) == (3, all_urls[6:])
    page = query(client, setup, page=5)  # no page_size: one page with everything
    assert (page["page_size"], page["current_page"], urls(page)) == (7, 1, all_urls)
    page = query(client, setup, page_size=100)
    assert (page["page_size"], urls(page)) == (100, all_urls)
    # Every page size, every page: the pages tile the list.
    for size in range(1, 9):
        tiled = sum((urls(query(client, setup, page_size=size, page=p)) for p in range(1, math.ceil(7 / size) + 1)), [])
        assert tiled == all_urls, size


def test_query_paging_errors(client, setup, bob):
    headers, project, dataset = setup
    _, bob_headers = bob
    url = images_url(project, dataset) + "query/"
    for page in (0, -3):
        response = client.post(f"{url}?page={page}", headers=headers)
        assert (response.status_code, response.json) == (
            422, {"detail": f"Invalid pagination parameter: page={page} < 1"}
        )
    # The page check comes before access control.
    response = client.post(images_url(999, 999) + "query/?page=0", headers=bob_headers)
    assert response.json == {"detail": "Invalid pagination parameter: page=0 < 1"}
    for page_size in (0, -1):
        response = client.post(f"{url}?page_size={page_size}", headers=headers)
        assert (response.status_code, response.json) == (
            422, {"detail": f"Invalid pagination parameter: page_size={page_size} <= 0"}
        )
    # ... and the page_size check after it.
    response = client.post(images_url(project, 999) + "query/?page_size=0", headers=headers)
    assert (response.status_code, response.json) == (404, {"detail": "Dataset not found"})
    for name in ("page", "page_size"):
        response = client.post(f"{url}?{name}=x", headers=headers)
        assert single_error(response) == (["query", name], "value is not a valid integer")
    response = client.post(f"{url}?use_dataset_filters=maybe", headers=headers)
    assert single_error(response) == (["query", "use_dataset_filters"], "value could not be parsed to a boolean")


def test_query_empty_result(client, setup):
    page = query(client, setup, page=4)
    assert page == {"total_count": 0, "page_size": 0, "current_page": 1, "attributes": {}, "types": [], "images": []}
    post_image(client, setup, "/zarr/a", attributes={"k": 1})
    page = query(client, setup, {"filters": {"attributes": {"k": 2}}}, page=3, page_size=10)
    assert page == {"total_count": 0, "page_size": 10, "current_page": 1, "attributes": {"k": [1]}, "types": [],
                    "images": []}


def test_query_by_zarr_url(client, setup):
    post_image(client, setup, "/zarr/a", types={"t": True})
    post_image(client, setup, "/zarr/b")
    assert urls(query(client, setup, {"zarr_url": "/zarr/b"})) == ["/zarr/b"]
    # Not normalised: a trailing slash finds nothing.
    page = query(client, setup, {"zarr_url": "/zarr/b/"})
    assert (page["total_count"], page["images"]) == (0, [])
    assert query(client, setup, {"zarr_url": ""})["total_count"] == 0
    # The filters also apply.
    assert urls(query(client, setup, {"zarr_url": "/zarr/a", "filters": {"types": {"t": True}}})) == ["/zarr/a"]
    assert query(client, setup, {"zarr_url": "/zarr/b", "filters": {"types": {"t": True}}})["total_count"] == 0
    # The summaries still describe the whole dataset.
    page = query(client, setup, {"zarr_url": "/zarr/b"})
    assert page["types"] == ["t"]


def test_query_filters(client, setup):
    images = [
        image("/zarr/0", {"well": "A01", "z": 1}, {"is_3D": True}),
        image("/zarr/1", {"well": "A02", "z": 2}, {"is_3D": False}),
        image("/zarr/2", {"well": "A01"}, {}),
        image("/zarr/3", {"well": "A02", "z": 1.0}, {"is_3D": True, "corrected": True}),
    ]
    for img in images:
        assert post_image(client, setup, **img).status_code == 201
    cases = [
        ({"attributes": {"well": "A01"}}, [0, 2]),
        ({"attributes": {"well": None}}, [0, 1, 2, 3]),  # null: no constraint
        ({"attributes": {"well": "A02", "z": None}}, [1, 3]),
        ({"attributes": {"z": 1}}, [0, 3]),  # 1 == 1.0
        ({"attributes": {"z": 1.0}}, [0, 3]),
        ({"attributes": {"missing": "x"}}, []),
        ({"types": {"is_3D": True}}, [0, 3]),
        ({"types": {"is_3D": False}}, [1, 2]),  # a missing type is false
        ({"types": {"corrected": False, "is_3D": True}}, [0]),
        ({"types": {"missing": False}}, [0, 1, 2, 3]),
        ({"types": {"missing": True}}, []),
        ({"attributes": {"well": "A01"}, "types": {"is_3D": False}}, [2]),
        ({"attributes": {"well": "A01", "z": 2}}, []),
    ]
    for filters, expected in cases:
        page = query(client, setup, {"filters": filters})
        assert urls(page) == [f"/zarr/{index}" for index in expected], filters
        assert page["total_count"] == len(expected), filters
        assert urls(page) == [img["zarr_url"] for img in images if matches(img, filters)]
    page = query(client, setup, {"filters": {"types": {"is_3D": True}}}, page_size=1, page=2)
    assert (page["total_count"], page["current_page"], urls(page)) == (2, 2, ["/zarr/3"])


def test_query_filters_use_python_equality(client, setup):
    """`1 == 1.0 == True` and `0 == 0.0 == False` in Python; strings equal only strings."""
    values = [1, 1.0, True, 0, 0.0, False, "1", "true", 2, 2.0, 2.5, 12345678901234567890]
    images = [image(f"/zarr/{index}", {"v": value}) for index, value in enumerate(values)]
    for img in images:
        assert post_image(client, setup, **img).status_code == 201
    for value in values + [3, "x", 1.5]:
        expected = [img["zarr_url"] for img in images if img["attributes"]["v"] == value]
        page = query(client, setup, {"filters": {"attributes": {"v": value}}})
        assert urls(page) == expected, value
        assert page["total_count"] == len(expected), value
        # Two conditions: the total is counted in SQL rather than from the summaries.
        page = query(client, setup, {"filters": {"attributes": {"v": value}, "types": {"none": False}}})
        assert (page["total_count"], urls(page)) == (len(expected), expected), value
    # The summary lists values that differ in Python, the first one recorded of each kind.
    summary = query(client, setup)["attributes"]["v"]
    assert len(summary) == 7 and all(v in summary for v in ["1", "true", 1, 0, 2, 2.5, 12345678901234567890])


def test_query_filters_validation(client, setup):
    headers, project, dataset = setup
    url = images_url(project, dataset) + "query/"
    cases = [
        ({"filters": None}, ["body", "filters"], "none is not an allowed value"),
        ({"filters": {"extra": {}}}, ["body", "filters", "extra"], "extra fields not permitted"),
        ({"filters": {"attributes": {"a": [1]}}}, ["body", "filters", "attributes"],
         "Filters.attributes[a] must be a scalar (int, float, str, bool, or None). Given [1] (<class 'list'>)"),
        ({"filters": {"types": {"a": None}}}, ["body", "filters", "types", "a"], "none is not an allowed value"),
        ([], ["body"], "value is not a valid dict"),
    ]
    for body, loc, msg in cases:
        assert single_error(client.post(url, json=body, headers=headers)) == (loc, msg), body


def test_query_with_dataset_filters(client, setup):
    headers, project, dataset = setup
    images = [
        image("/zarr/0", {"well": "A01", "z": 0}, {"is_3D": True}),
        image("/zarr/1", {"well": "A02", "z": 1}, {"is_3D": False, "x": True}),
        image("/zarr/2", {"well": "A01", "z": 2}, {"is_3D": False}),
        image("/zarr/3", {"well": "A03", "q": "only here"}, {"is_3D": True, "y": False}),
    ]
    for img in images:
        post_image(client, setup, **img)
    dataset_filters = {"attributes": {"well": "A01", "q": None}, "types": {"is_3D": False}}
    client.patch(dataset_url(project, dataset), json={"filters": dataset_filters}, headers=headers)

    # Not used unless asked for.
    assert query(client, setup)["total_count"] == 4
    page = query(client, setup, use_dataset_filters="true")
    assert (page["total_count"], urls(page)) == (1, ["/zarr/2"])
    # The summaries describe the images that match the dataset filters.
    assert (page["attributes"], page["types"]) == ({"well": ["A01"], "z": [2]}, ["is_3D"])
    # Request filters narrow it down further, without changing the summaries.
    page = query(client, setup, {"filters": {"attributes": {"z": 0}}}, use_dataset_filters="yes")
    assert (page["total_count"], page["attributes"]) == (0, {"well": ["A01"], "z": [2]})
    # Dataset filters whose attribute values are all null and no types: everything.
    client.patch(dataset_url(project, dataset), json={"filters": {"attributes": {"well": None}}}, headers=headers)
    page = query(client, setup, use_dataset_filters=1)
    assert page["total_count"] == 4
    assert sorted(page["types"]) == ["is_3D", "x", "y"]
    client.patch(dataset_url(project, dataset), json={"filters": {"types": {"is_3D": True}}}, headers=headers)
    page = query(client, setup, use_dataset_filters=1, page_size=1, page=2)
    assert (page["total_count"], page["current_page"], urls(page)) == (2, 2, ["/zarr/3"])
    assert same_values(page["attributes"], {"well": ["A01", "A03"], "z": [0], "q": ["only here"]})
    assert sorted(page["types"]) == ["is_3D", "y"]


def test_summaries_follow_add_patch_delete(client, setup):
    headers, project, dataset = setup
    post_image(client, setup, "/zarr/a", attributes={"well": "A01", "z": 1}, types={"t": True})
    post_image(client, setup, "/zarr/b", attributes={"well": "A01", "z": True}, types={"t": False})
    page = query(client, setup)
    assert same_values(page["attributes"], {"well": ["A01"], "z": [1]})
    assert page["types"] == ["t"]

    response = client.patch(images_url(project, dataset), json={"zarr_url": "/zarr/a", "attributes": {"well": "B02"}},
                            headers=headers)
    assert response.status_code == 200
    page = query(client, setup)
    assert same_values(page["attributes"], {"well": ["A01", "B02"], "z": [True]})
    assert query(client, setup, {"filters": {"attributes": {"z": 1}}})["total_count"] == 1
    assert query(client, setup, {"filters": {"types": {"t": False}}})["total_count"] == 1

    client.patch(images_url(project, dataset), json={"zarr_url": "/zarr/b", "types": {"u": False}}, headers=headers)
    page = query(client, setup)
    assert page["types"] == ["t", "u"]
    assert query(client, setup, {"filters": {"types": {"t": False}}})["total_count"] == 1
    assert query(client, setup, {"filters": {"types": {"u": False}}})["total_count"] == 2

    assert client.delete(images_url(project, dataset) + "?zarr_url=/zarr/b", headers=headers).status_code == 204
    page = query(client, setup)
    assert (page["attributes"], page["types"], page["total_count"]) == ({"well": ["B02"]}, ["t"], 1)
    assert client.delete(images_url(project, dataset) + "?zarr_url=/zarr/a", headers=headers).status_code == 204
    assert query(client, setup) == {"total_count": 0, "page_size": 0, "current_page": 1, "attributes": {},
                                    "types": [], "images": []}


# --- Patch and delete ----------------------------------------------------------------


def test_patch_image(client, setup):
    headers, project, dataset = setup
    post_image(client, setup, "/zarr/a", origin="/raw/a", attributes={"a": 1, "b": 2}, types={"t": True})
    post_image(client, setup, "/zarr/b")
    url = images_url(project, dataset)
    response = client.patch(url, json={"zarr_url": "/zarr/a/", "attributes": {"c": "x"}, "origin": "/ignored"},
                            headers=headers)
    assert response.status_code == 200
    assert response.json == image("/zarr/a", {"c": "x"}, {"t": True}, origin="/raw/a")
    response = client.patch(url, json={"zarr_url": "/zarr/a", "types": {}, "attributes": None}, headers=headers)
    assert response.json == image("/zarr/a", {"c": "x"}, {}, origin="/raw/a")
    response = client.patch(url, json={"zarr_url": "/zarr/a"}, headers=headers)
    assert response.json == image("/zarr/a", {"c": "x"}, {}, origin="/raw/a")
    # The image keeps its place.
    assert urls(query(client, setup)) == ["/zarr/a", "/zarr/b"]
    assert query(client, setup, {"zarr_url": "/zarr/a"})["images"] == [response.json]


def test_patch_image_errors(client, setup):
    headers, project, dataset = setup
    url = images_url(project, dataset)
    response = client.patch(url, json={"zarr_url": "/zarr/missing"}, headers=headers)
    assert (response.status_code, response.json) == (
        404, {"detail": f"No image with zarr_url '/zarr/missing' in DatasetV2 {dataset}."}
    )
    post_image(client, setup, "/zarr/a")
    cases = [
        ({}, ["body", "zarr_url"], "field required"),
        ({"zarr_url": "zarr/a"}, ["body", "zarr_url"], "URLs must begin with '/' or 's3'."),
        ({"zarr_url": "/zarr/a", "attributes": {"k": None}}, ["body", "attributes"],
         "SingleImage.attributes[k] must be a scalar (int, float, str or bool). Given None (<class 'NoneType'>)"),
        ({"zarr_url": "/zarr/a", "types": {"k": []}}, ["body", "types", "k"], "value could not be parsed to a boolean"),
    ]
    for body, loc, msg in cases:
        assert single_error(client.patch(url, json=body, headers=headers)) == (loc, msg), body


def test_delete_image(client, setup):
    headers, project, dataset = setup
    for name in "abc":
        post_image(client, setup, f"/zarr/{name}")
    url = images_url(project, dataset)
    response = client.delete(url + "?zarr_url=/zarr/b", headers=headers)
    assert (response.status_code, response.data) == (204, b"")
    assert urls(query(client, setup)) == ["/zarr/a", "/zarr/c"]
    for zarr_url in ("/zarr/b", "/zarr/a/"):  # gone; not normalised
        response = client.delete(f"{url}?zarr_url={zarr_url}", headers=headers)
        assert (response.status_code, response.json) == (
            404, {"detail": f"No image with zarr_url '{zarr_url}' in DatasetV2 {dataset}."}
        )
    assert single_error(client.delete(url, headers=headers)) == (["query", "zarr_url"], "field required")
    # A deleted url can be added again, at the end.
    assert client.delete(url + "?zarr_url=/zarr/a", headers=headers).status_code == 204
    assert post_image(client, setup, "/zarr/a").status_code == 201
    assert urls(query(client, setup)) == ["/zarr/c", "/zarr/a"]


# --- Consistency under random operations ----------------------------------------------


def test_random_operations_keep_queries_and_summaries_exact(client, setup, monkeypatch):
    """Random adds, patches and deletes; every answer equals the plain-Python reference."""
    headers, project, dataset = setup
    rng = random.Random(1234)
    values = [0, 1, 2, 1.0, 0.0, True, False, "1", "a", "b", 2.5]

    def random_image(zarr_url):
        attributes = {key: rng.choice(values) for key in rng.sample(["p", "q", "r"], rng.randint(0, 3))}
        types = {key: rng.random() < 0.5 for key in rng.sample(["s", "t"], rng.randint(0, 2))}
        return image(zarr_url, attributes, types)

    reference = {}
    for step in range(80):
        action = rng.random()
        if action < 0.5 or not reference:
            img = random_image(f"/zarr/{step}")
            assert post_image(client, setup, **img).status_code == 201
            reference[img["zarr_url"]] = img
        elif action < 0.8:
            zarr_url = rng.choice(list(reference))
            new = random_image(zarr_url)
            body = {"zarr_url": zarr_url, "attributes": new["attributes"], "types": new["types"]}
            assert client.patch(images_url(project, dataset), json=body, headers=headers).status_code == 200
            reference[zarr_url] = {**reference[zarr_url], **body}
        else:
            zarr_url = rng.choice(list(reference))
            response = client.delete(images_url(project, dataset) + f"?zarr_url={zarr_url}", headers=headers)
            assert response.status_code == 204
            del reference[zarr_url]
        if step % 8:
            continue
        images = list(reference.values())
        page = query(client, setup)
        assert page["images"] == images
        expected_attributes, expected_types = reference_summary(images)
        assert same_values(page["attributes"], expected_attributes)
        assert set(page["types"]) == expected_types
        for _ in range(6):
            filters = {
                "attributes": {rng.choice("pqr"): rng.choice(values + [None]) for _ in range(rng.randint(0, 2))},
                "types": {rng.choice("st"): rng.random() < 0.5 for _ in range(rng.randint(0, 2))},
            }
            expected = [img for img in images if matches(img, filters)]
            size = rng.randint(1, 4)
            for page_number in range(1, math.ceil(len(expected) / size) + 2):
                for plan in (plans.GIN, plans.ORDERED):
                    monkeypatch.setattr(plans, "choose", lambda *args, chosen=plan: chosen)
                    page = query(client, setup, {"filters": filters}, page=page_number, page_size=size)
                    last = max(1, math.ceil(len(expected) / size))
                    start = (min(page_number, last) - 1) * size
                    assert page["total_count"] == len(expected), filters
                    assert page["images"] == expected[start : start + size], (filters, page_number, size)
            monkeypatch.undo()
    # The stored summaries hold no zero counts.
    app_state = client.application
    with app_state.app_context():
        counts = db.session.scalars(select(ImageAttributeCount.count)).all()
        counts += db.session.scalars(select(ImageTypeCount.count)).all()
        assert all(count > 0 for count in counts)
        assert db.session.get(DatasetV2, dataset).image_count == len(reference)


# --- The store API (used by the job runner) -------------------------------------------------


def test_store_bulk_operations(app, client, setup, monkeypatch):
    _, _, dataset_id = setup
    monkeypatch.setattr(store, "_BATCH", 3)  # exercise the chunking
    images = [image(f"/zarr/{index}", {"i": index, "even": index % 2 == 0}, {"t": index < 4}) for index in range(10)]
    with app.app_context():
        dataset = db.session.get(DatasetV2, dataset_id)
        assert store.add_images(dataset, images) == 10
        db.session.commit()
    with app.app_context():
        assert store.count(dataset_id) == 10
        assert store.all_images(dataset_id) == images
        assert list(store.iter_images(dataset_id, [{"types": {"t": True}}, {"attributes": {"even": True}}])) == [
            images[0], images[2]
        ]
        assert store.get_image(dataset_id, "/zarr/3") == images[3]
        assert store.get_image(dataset_id, "/zarr/missing") is None
        assert set(store.get_images(dataset_id, ["/zarr/1", "/zarr/9", "/zarr/x"])) == {"/zarr/1", "/zarr/9"}

        store.upsert_images(dataset_id, [image("/zarr/2", {"new": 1}), image("/zarr/new", {"new": 2}, origin="/zarr/2")])
        assert store.remove_images(dataset_id, ["/zarr/0", "/zarr/1", "/zarr/nothing"]) == 2
        assert store.remove_image(dataset_id, "/zarr/0") is False
        db.session.commit()
    with app.app_context():
        listed = store.all_images(dataset_id)
        assert [img["zarr_url"] for img in listed] == [f"/zarr/{i}" for i in range(2, 10)] + ["/zarr/new"]
        assert listed[0] == image("/zarr/2", {"new": 1})
        summary = store.summary(dataset_id)
        assert same_values(summary.attributes, reference_summary(listed)[0])
        assert summary.types == ["t"]
        page = store.query_page(dataset_id, filters=[{"types": {"t": False}}], page=2, page_size=3)
        assert (page.total, page.page, [img["zarr_url"] for img in page.images]) == (
            8, 2, ["/zarr/6", "/zarr/7", "/zarr/8"]
        )
        with pytest.raises(LookupError):
            store.count(999)


def test_store_apply_changes(app, client, setup):
    _, _, dataset_id = setup
    before = [image(f"/zarr/{name}", {"n": name}, {"t": True}) for name in "abcde"]
    with app.app_context():
        store.add_images(dataset_id, before)
        db.session.commit()
    with app.app_context():
        assert store.all_images(dataset_id) == before
        after = [
            before[0],
            {**before[1], "attributes": {"n": "b", "new": 1}},  # changed in place
            {**before[3], "attributes": {"n": True}},
            # c removed; e removed and added again later; a new image
            image("/zarr/f", {"n": "f"}, {"t": False}, origin="/zarr/a"),
            {**before[4], "types": {}},
        ]
        store.apply_changes(dataset_id, before, after)
        db.session.commit()
    with app.app_context():
        assert store.all_images(dataset_id) == after
        summary = store.summary(dataset_id)
        assert same_values(summary.attributes, reference_summary(after)[0])
        # `True` replaced "d" (a change even though `True == 1` elsewhere) and is counted.
        assert store.query_page(dataset_id, filters=[{"attributes": {"n": 1}}]).total == 1
        # Stored 1 vs `True`: a type change is a change.
        store.apply_changes(dataset_id, after, [{**after[0], "attributes": {"n": 1}}, *after[1:]])
        store.apply_changes(dataset_id, after, after)  # nothing to do
        db.session.commit()
    with app.app_context():
        assert store.get_image(dataset_id, "/zarr/a")["attributes"] == {"n": 1}
        assert type(store.get_image(dataset_id, "/zarr/a")["attributes"]["n"]) is int


# --- SQLite (development mode) ----------------------------------------------------------


def test_sqlite_development_database(sqlite_app):
    """The same semantics on SQLite, where filters use `json_each` (and the migrations run)."""
    from fractal_server.auth.accounts import create_user
    from fractal_server.auth.tokens import issue_token

    app = sqlite_app
    with app.app_context():
        headers = {"Authorization": f"Bearer {issue_token(create_user('dev@example.org', 'pw'), 3600)}"}
    client = app.test_client()
    project = create_project(client, headers)
    setup = (headers, project, create_dataset(client, headers, project)["id"])
    values = [1, 1.0, True, "1", 2, False, 0, "x"]
    images = [image(f"/zarr/{i}", {"v": v, 'odd."key': i % 2}, {"t": i % 3 == 0}) for i, v in enumerate(values)]
    for img in images:
        assert post_image(client, setup, **img).status_code == 201
    for filters in [{"attributes": {"v": v}} for v in values + [None, 3]] + [
        {"types": {"t": False}},
        {"types": {"t": True}, "attributes": {'odd."key': 1}},
        {"types": {"missing": False}, "attributes": {'odd."key': True}},
    ]:
        expected = [img for img in images if matches(img, filters)]
        for page_number in (1, 2, 3):
            page = query(client, setup, {"filters": filters}, page=page_number, page_size=2)
            start = (min(page_number, max(1, math.ceil(len(expected) / 2))) - 1) * 2
            assert page["total_count"] == len(expected), filters
            assert page["images"] == expected[start : start + 2], (filters, page_number)
    page = query(client, setup, page=3, page_size=3)
    assert urls(page) == [img["zarr_url"] for img in images[6:]]
    assert same_values(page["attributes"], reference_summary(images)[0])
    headers, project, dataset = setup
    client.patch(dataset_url(project, dataset), json={"filters": {"types": {"t": True}}}, headers=headers)
    page = query(client, setup, use_dataset_filters="true")
    selected = [img for img in images if img["types"]["t"]]
    assert page["images"] == selected
    assert same_values(page["attributes"], reference_summary(selected)[0])
    assert page["types"] == ["t"]
    response = client.patch(images_url(project, dataset), json={"zarr_url": "/zarr/0", "attributes": {}}, headers=headers)
    assert response.status_code == 200
    assert client.delete(images_url(project, dataset) + "?zarr_url=/zarr/1", headers=headers).status_code == 204
    remaining = [{**images[0], "attributes": {}}] + images[2:]
    assert same_values(query(client, setup)["attributes"], reference_summary(remaining)[0])
    assert client.delete(f"/api/v2/project/{project}/", headers=headers).status_code == 204
    with app.app_context():
        assert db.session.scalars(select(ImageAttributeCount.id)).all() == []


def test_store_duplicate_insert_is_an_integrity_error(app, client, setup):
    from sqlalchemy.exc import IntegrityError

    _, _, dataset_id = setup
    with app.app_context():
        store.add_image(dataset_id, image("/zarr/a"))
        db.session.commit()
        for count in (1, 150):  # INSERT, then COPY
            with pytest.raises(IntegrityError):
                store.add_images(dataset_id, [image(f"/zarr/b{i}") for i in range(count)] + [image("/zarr/a")])
            db.session.rollback()
        assert store.all_images(dataset_id) == [image("/zarr/a")]
        assert store.count(dataset_id) == 1
        many = [image(f"/zarr/c{i}", {"i": i % 7}, {"t": i % 2 == 0}) for i in range(150)]
        assert store.add_images(dataset_id, many) == 150  # through COPY
        db.session.commit()
        assert store.all_images(dataset_id) == [image("/zarr/a")] + many
        assert store.query_page(dataset_id, filters=[{"attributes": {"i": 3}}]).total == 21
        assert sorted(store.summary(dataset_id).attributes["i"]) == list(range(7))


def test_add_image_race_is_a_duplicate_error(client, setup, monkeypatch):
    """An image added between the duplicate check and the insert: same 422."""
    assert post_image(client, setup, "/zarr/a").status_code == 201
    monkeypatch.setattr(store, "get_image", lambda *args: None)
    response = post_image(client, setup, "/zarr/a")
    assert (response.status_code, response.json) == (
        422, {"detail": [f"Image with zarr_url '/zarr/a' already in DatasetV2 {setup[2]}"]}
    )
    monkeypatch.undo()
    assert query(client, setup)["total_count"] == 1
