"""Datasets: create, list, read, patch, delete, export, import (`api-v2.md` section 5)."""
import pytest
from sqlalchemy import func, insert, select, update

from fractal_server.db import db
from fractal_server.db.models import DatasetV2, ImageV2, JobV2, User
from fractal_server.db.models.projects import ImageAttributeCount, ImageTypeCount

from .factories import create_project

DATASET_KEYS = {"id", "name", "project_id", "project", "history", "timestamp_created", "zarr_dir", "filters"}
EMPTY_FILTERS = {"attributes": {}, "types": {}}


def datasets_url(project_id):
    return f"/api/v2/project/{project_id}/dataset/"


def dataset_url(project_id, dataset_id):
    return f"/api/v2/project/{project_id}/dataset/{dataset_id}/"


def create_dataset(client, headers, project_id, name="ds", zarr_dir="/zarr", **body) -> dict:
    response = client.post(datasets_url(project_id), json={"name": name, "zarr_dir": zarr_dir, **body}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def add_image(client, headers, project_id, dataset_id, zarr_url, **body):
    response = client.post(
        dataset_url(project_id, dataset_id) + "images/", json={"zarr_url": zarr_url, **body}, headers=headers
    )
    assert response.status_code == 201, response.json


def single_error(response, status=422):
    """`(loc, msg)` of a one-item validation error."""
    assert response.status_code == status, response.json
    [error] = response.json["detail"]
    return error["loc"], error["msg"]


def set_project_dir(app, user_id, project_dir):
    with app.app_context():
        db.session.get(User, user_id).settings.project_dir = project_dir
        db.session.commit()


def insert_job(app, project_id, dataset_id, status="submitted") -> int:
    """A job row inserted directly (only the columns these tests need)."""
    with app.app_context():
        job_id = db.session.scalar(
            insert(JobV2)
            .values(
                project_id=project_id, dataset_id=dataset_id, user_email="u@example.org", project_dump={},
                workflow_dump={}, dataset_dump={}, first_task_index=0, last_task_index=0, status=status,
            )
            .returning(JobV2.id)
        )
        db.session.commit()
        return job_id


def job_columns(app, job_id) -> tuple:
    with app.app_context():
        return db.session.execute(select(JobV2.project_id, JobV2.dataset_id).where(JobV2.id == job_id)).one()


def count_rows(app, model, dataset_id):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(model.dataset_id == dataset_id))


# --- Access ------------------------------------------------------------------


def test_dataset_access_errors(client, alice, bob):
    _, alice_headers = alice
    _, bob_headers = bob
    project = create_project(client, alice_headers)
    other_project = create_project(client, alice_headers, "other")
    dataset = create_dataset(client, alice_headers, project)["id"]
    for method in ("GET", "PATCH", "DELETE"):
        kwargs = {"json": {}} if method == "PATCH" else {}
        cases = [
            (dataset_url(999, dataset), alice_headers, 404, "Project not found"),
            (dataset_url(project, dataset), bob_headers, 403, f"Not allowed on project {project}"),
            (dataset_url(project, 999), alice_headers, 404, "Dataset not found"),
            (
                dataset_url(other_project, dataset),
                alice_headers,
                422,
                f"Invalid project_id={other_project} for dataset_id={dataset}",
            ),
        ]
        for url, headers, status, detail in cases:
            response = client.open(url, method=method, headers=headers, **kwargs)
            assert (response.status_code, response.json) == (status, {"detail": detail}), (method, url)
    export = dataset_url(project, dataset) + "export/"
    assert client.get(export, headers=bob_headers).status_code == 403
    assert client.get(dataset_url(other_project, dataset) + "export/", headers=alice_headers).status_code == 422
    for url in (datasets_url(999), datasets_url(999) + "import/"):
        method = "GET" if url.endswith("dataset/") else "POST"
        response = client.open(url, method=method, headers=alice_headers, json={"name": "x", "zarr_dir": "/z"})
        assert (response.status_code, response.json) == (404, {"detail": "Project not found"})
    for method, url in [("POST", datasets_url(project)), ("GET", datasets_url(project)),
                        ("POST", datasets_url(project) + "import/")]:
        response = client.open(url, method=method, json={"name": "x", "zarr_dir": "/z"}, headers=bob_headers)
        assert (response.status_code, response.json) == (403, {"detail": f"Not allowed on project {project}"})


def test_anonymous_requests_are_unauthorized(client, alice):
    _, headers = alice
    project = create_project(client, headers)
    for method, url in [
        ("GET", "/api/v2/dataset/"),
        ("GET", datasets_url(project)),
        ("POST", datasets_url(project)),
        ("GET", dataset_url(project, 1)),
        ("PATCH", dataset_url("x", 1)),
        ("POST", datasets_url(project) + "import/"),
        ("GET", dataset_url(project, 1) + "export/"),
    ]:
        response = client.open(url, method=method, json={"bad": 1})
        assert (response.status_code, response.json) == (401, {"detail": "Unauthorized"})


def test_non_integer_path_id(client, alice):
    _, headers = alice
    response = client.get("/api/v2/project/1/dataset/abc/", headers=headers)
    assert response.json["detail"] == [
        {"loc": ["path", "dataset_id"], "msg": "value is not a valid integer", "type": "type_error.integer"}
    ]


# --- Create ------------------------------------------------------------------


def test_create_dataset(client, alice):
    _, headers = alice
    project = create_project(client, headers)
    body = {"name": "  my ds ", "zarr_dir": "/tmp//zarr/./a/../b/", "filters": {"attributes": {" well ": "A01"}}}
    response = client.post(datasets_url(project), json=body, headers=headers)
    assert response.status_code == 201
    dataset = response.json
    assert set(dataset) == DATASET_KEYS
    assert dataset["name"] == "my ds"
    assert dataset["zarr_dir"] == "/tmp/zarr/b"
    assert dataset["filters"] == {"attributes": {"well": "A01"}, "types": {}}
    assert dataset["history"] == []
    assert dataset["project_id"] == project
    assert set(dataset["project"]) == {"id", "name", "timestamp_created"}
    assert dataset["timestamp_created"].endswith("+00:00")
    # Names are not unique.
    again = create_dataset(client, headers, project, name="my ds")
    assert again["id"] == dataset["id"] + 1
    assert create_dataset(client, headers, project, filters=EMPTY_FILTERS)["filters"] == EMPTY_FILTERS


def test_create_dataset_default_zarr_dir(app, client, alice):
    user_id, headers = alice
    project = create_project(client, headers, "P one")
    for body in ({"name": "ds"}, {"name": "ds", "zarr_dir": None}):
        response = client.post(datasets_url(project), json=body, headers=headers)
        assert (response.status_code, response.json) == (
            422,
            {"detail": "Both 'dataset.zarr_dir' and 'user.settings.project_dir' are null"},
        )
    set_project_dir(app, user_id, "/tmp/projects/")
    response = client.post(datasets_url(project), json={"name": "My DS.v2"}, headers=headers)
    assert response.status_code == 201
    dataset = response.json
    assert dataset["zarr_dir"] == f"/tmp/projects/fractal/{project}_p_one/{dataset['id']}_my_ds_v2"
    # An explicit zarr_dir wins over the project folder.
    assert create_dataset(client, headers, project, zarr_dir="/elsewhere")["zarr_dir"] == "/elsewhere"


@pytest.mark.parametrize(
    "body, loc, msg",
    [
        ({"zarr_dir": "/z"}, ["body", "name"], "field required"),
        ({"name": "  ", "zarr_dir": "/z"}, ["body", "name"], "String attribute 'name' cannot be empty"),
        ({"name": None, "zarr_dir": "/z"}, ["body", "name"], "String attribute 'name' cannot be None"),
        ({"name": "d", "zarr_dir": "s3://bucket/x"}, ["body", "zarr_dir"], "S3 handling not implemented yet"),
        ({"name": "d", "zarr_dir": "relative/x"}, ["body", "zarr_dir"], "URLs must begin with '/' or 's3'."),
        ({"name": "d", "zarr_dir": "/z", "images": []}, ["body", "images"], "extra fields not permitted"),
        ({"name": "d", "zarr_dir": "/z", "filters": None}, ["body", "filters"], "none is not an allowed value"),
        (
            {"name": "d", "zarr_dir": "/z", "filters": {"other": {}}},
            ["body", "filters", "other"],
            "extra fields not permitted",
        ),
        (
            {"name": "d", "zarr_dir": "/z", "filters": {"attributes": {"a": [1]}}},
            ["body", "filters", "attributes"],
            "Filters.attributes[a] must be a scalar (int, float, str, bool, or None). Given [1] (<class 'list'>)",
        ),
        (
            {"name": "d", "zarr_dir": "/z", "filters": {"types": {"a": True, " a": False}}},
            ["body", "filters", "types"],
            "Dictionary contains multiple identical keys",
        ),
        (
            {"name": "d", "zarr_dir": "/z", "filters": {"types": {"a": "maybe"}}},
            ["body", "filters", "types", "a"],
            "value could not be parsed to a boolean",
        ),
    ],
)
def test_create_dataset_validation(client, alice, body, loc, msg):
    _, headers = alice
    project = create_project(client, headers)
    assert single_error(client.post(datasets_url(project), json=body, headers=headers)) == (loc, msg)


def test_filters_accept_lax_booleans_and_null_attributes(client, alice):
    _, headers = alice
    project = create_project(client, headers)
    filters = {"attributes": {"a": None, "b": 1.5, "c": True}, "types": {"x": "yes", "y": 0}}
    dataset = create_dataset(client, headers, project, filters=filters)
    assert dataset["filters"] == {"attributes": {"a": None, "b": 1.5, "c": True}, "types": {"x": True, "y": False}}


# --- List and read -------------------------------------------------------------


def test_list_datasets(app, client, alice, bob):
    _, alice_headers = alice
    _, bob_headers = bob
    first = create_project(client, alice_headers, "first")
    second = create_project(client, alice_headers, "second")
    bobs = create_project(client, bob_headers, "bob's")
    ids = [
        create_dataset(client, alice_headers, first, "a")["id"],
        create_dataset(client, alice_headers, second, "b")["id"],
        create_dataset(client, bob_headers, bobs, "c")["id"],
        create_dataset(client, alice_headers, first, "d")["id"],
    ]
    history = [{"workflowtask": {"id": 1}, "status": "done", "parallelization": {}}]
    with app.app_context():
        db.session.get(DatasetV2, ids[0]).history = history
        db.session.commit()

    response = client.get(datasets_url(first), headers=alice_headers)
    assert response.status_code == 200
    assert [d["id"] for d in response.json] == [ids[0], ids[3]]
    assert response.json[0]["history"] == history
    assert set(response.json[0]) == DATASET_KEYS
    response = client.get(datasets_url(first) + "?history=false", headers=alice_headers)
    assert [d["history"] for d in response.json] == [[], []]

    response = client.get("/api/v2/dataset/", headers=alice_headers)
    assert [d["id"] for d in response.json] == [ids[0], ids[1], ids[3]]
    assert response.json[0]["history"] == history
    response = client.get("/api/v2/dataset/?history=0", headers=alice_headers)
    assert [d["history"] for d in response.json] == [[], [], []]
    assert [d["id"] for d in client.get("/api/v2/dataset/", headers=bob_headers).json] == [ids[2]]

    response = client.get(datasets_url(first) + "?history=maybe", headers=alice_headers)
    assert single_error(response) == (["query", "history"], "value could not be parsed to a boolean")


def test_read_dataset(client, alice):
    _, headers = alice
    project = create_project(client, headers)
    created = create_dataset(client, headers, project)
    add_image(client, headers, project, created["id"], "/zarr/a")
    response = client.get(dataset_url(project, created["id"]), headers=headers)
    assert response.status_code == 200
    assert response.json == created  # no image list in this shape


# --- Patch ---------------------------------------------------------------------


def test_patch_dataset(client, alice):
    _, headers = alice
    project = create_project(client, headers)
    dataset = create_dataset(client, headers, project, filters={"attributes": {"a": 1}, "types": {"t": True}})
    url = dataset_url(project, dataset["id"])

    response = client.patch(url, json={"name": " new ", "zarr_dir": "/new/dir/"}, headers=headers)
    assert response.status_code == 200
    assert (response.json["name"], response.json["zarr_dir"]) == ("new", "/new/dir")
    assert response.json["filters"] == dataset["filters"]

    # Filters are replaced as a whole; a missing sub-key becomes {} [quirk (b)].
    response = client.patch(url, json={"filters": {"types": {"u": False}}}, headers=headers)
    assert response.json["filters"] == {"attributes": {}, "types": {"u": False}}
    response = client.patch(url, json={"filters": {"attributes": {"b": None}}}, headers=headers)
    assert response.json["filters"] == {"attributes": {"b": None}, "types": {}}
    response = client.patch(url, json={"filters": {}}, headers=headers)
    assert response.json["filters"] == EMPTY_FILTERS

    response = client.patch(url, json={}, headers=headers)
    assert response.status_code == 200
    assert response.json["name"] == "new"
    assert client.get(url, headers=headers).json == response.json


def test_patch_zarr_dir_needs_an_empty_image_list(client, alice):
    _, headers = alice
    project = create_project(client, headers)
    dataset = create_dataset(client, headers, project)["id"]
    url = dataset_url(project, dataset)
    add_image(client, headers, project, dataset, "/zarr/a")
    expected = (422, {"detail": "Cannot modify `zarr_dir` because the dataset has a non-empty image list."})
    for zarr_dir in ("/other", "/zarr"):
        response = client.patch(url, json={"zarr_dir": zarr_dir}, headers=headers)
        assert (response.status_code, response.json) == expected
    # Other fields may still change.
    assert client.patch(url, json={"name": "renamed"}, headers=headers).status_code == 200
    response = client.delete(url + "images/?zarr_url=/zarr/a", headers=headers)
    assert response.status_code == 204
    assert client.patch(url, json={"zarr_dir": "/other"}, headers=headers).json["zarr_dir"] == "/other"


@pytest.mark.parametrize(
    "body, loc, msg",
    [
        ({"name": None}, ["body", "name"], "String attribute 'name' cannot be None"),
        ({"name": ""}, ["body", "name"], "String attribute 'name' cannot be empty"),
        ({"zarr_dir": None}, ["body", "zarr_dir"], "none is not an allowed value"),  # [quirk (a)]
        ({"zarr_dir": "s3:/x"}, ["body", "zarr_dir"], "S3 handling not implemented yet"),
        ({"filters": None}, ["body", "filters"], "none is not an allowed value"),  # [quirk (c)]
        ({"history": []}, ["body", "history"], "extra fields not permitted"),
        ({"images": []}, ["body", "images"], "extra fields not permitted"),
        ({"filters": {"attributes": {"a": {"b": 1}}}}, ["body", "filters", "attributes"],
         "Filters.attributes[a] must be a scalar (int, float, str, bool, or None). Given {'b': 1} (<class 'dict'>)"),
    ],
)
def test_patch_dataset_validation(client, alice, body, loc, msg):
    _, headers = alice
    project = create_project(client, headers)
    dataset = create_dataset(client, headers, project)["id"]
    response = client.patch(dataset_url(project, dataset), json=body, headers=headers)
    assert single_error(response) == (loc, msg)


# --- Delete --------------------------------------------------------------------


def test_delete_dataset(app, client, alice):
    _, headers = alice
    project = create_project(client, headers)
    dataset = create_dataset(client, headers, project)["id"]
    kept = create_dataset(client, headers, project)["id"]
    for name in ("a", "b"):
        add_image(client, headers, project, dataset, f"/zarr/{name}", attributes={"x": name}, types={"t": True})
    add_image(client, headers, project, kept, "/zarr/a", attributes={"x": "a"})
    running = insert_job(app, project, dataset)
    other_running = insert_job(app, project, dataset)
    done = insert_job(app, project, dataset, status="done")

    response = client.delete(dataset_url(project, dataset), headers=headers)
    assert (response.status_code, response.json) == (
        422,
        {"detail": f"Cannot delete dataset {dataset} because it is linked to active job(s) {running}, {other_running}."},
    )
    with app.app_context():
        db.session.execute(update(JobV2).where(JobV2.id.in_([running, other_running])).values(status="failed"))
        db.session.commit()
    response = client.delete(dataset_url(project, dataset), headers=headers)
    assert response.status_code == 204
    assert response.data == b""
    assert client.get(dataset_url(project, dataset), headers=headers).status_code == 404
    assert job_columns(app, done) == (project, None)
    for model in (ImageV2, ImageAttributeCount, ImageTypeCount):
        assert count_rows(app, model, dataset) == 0
    assert count_rows(app, ImageV2, kept) == 1
    assert count_rows(app, ImageAttributeCount, kept) == 1


def test_delete_project_with_datasets_and_images(app, client, alice):
    _, headers = alice
    project = create_project(client, headers)
    datasets = [create_dataset(client, headers, project, name=n)["id"] for n in ("a", "b")]
    for dataset in datasets:
        add_image(client, headers, project, dataset, "/zarr/x", attributes={"k": 1}, types={"t": False})
    job = insert_job(app, project, datasets[0], status="done")
    response = client.delete(f"/api/v2/project/{project}/", headers=headers)
    assert response.status_code == 204
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(DatasetV2)) == 0
        for model in (ImageV2, ImageAttributeCount, ImageTypeCount):
            assert db.session.scalar(select(func.count()).select_from(model)) == 0
    assert job_columns(app, job) == (None, None)
    assert client.get("/api/v2/dataset/", headers=headers).json == []


# --- Export and import -----------------------------------------------------------


IMAGES = [
    {"zarr_url": "/zarr/plate.zarr/B/03/0", "origin": None, "attributes": {"well": "B03", "n": 1}, "types": {"is_3D": True}},
    {"zarr_url": "/zarr/plate.zarr/A/01/0", "origin": "/zarr/raw/A/01/0", "attributes": {"well": "A01", "f": 1.5}, "types": {}},
    {"zarr_url": "/zarr/plate.zarr/A/02/0", "origin": None, "attributes": {}, "types": {"is_3D": False, "ok": True}},
]


def test_export_dataset(client, alice):
    _, headers = alice
    project = create_project(client, headers)
    filters = {"attributes": {"well": None}, "types": {"is_3D": True}}
    dataset = create_dataset(client, headers, project, name="exported", filters=filters)["id"]
    for image in IMAGES:
        add_image(client, headers, project, dataset, **image)
    response = client.get(dataset_url(project, dataset) + "export/", headers=headers)
    assert response.status_code == 200
    assert response.json == {"name": "exported", "zarr_dir": "/zarr", "images": IMAGES, "filters": filters}
    empty = create_dataset(client, headers, project, name="empty")["id"]
    exported = client.get(dataset_url(project, empty) + "export/", headers=headers).json
    assert exported == {"name": "empty", "zarr_dir": "/zarr", "images": [], "filters": EMPTY_FILTERS}


def test_import_dataset(client, alice):
    _, headers = alice
    project = create_project(client, headers)
    images = [dict(image) for image in IMAGES]
    images[0] = {**images[0], "zarr_url": images[0]["zarr_url"] + "/", "extra": "ignored"}
    body = {"name": " not stripped ", "zarr_dir": "/zarr/", "images": images, "filters": {"types": {"is_3D": True}}}
    response = client.post(datasets_url(project) + "import/", json=body, headers=headers)
    assert response.status_code == 201
    dataset = response.json
    assert set(dataset) == DATASET_KEYS
    assert (dataset["name"], dataset["zarr_dir"], dataset["history"]) == (" not stripped ", "/zarr", [])
    assert dataset["filters"] == {"attributes": {}, "types": {"is_3D": True}}
    exported = client.get(dataset_url(project, dataset["id"]) + "export/", headers=headers).json
    assert exported["images"] == IMAGES
    # Round trip: an export is a valid import.
    response = client.post(datasets_url(project) + "import/", json=exported, headers=headers)
    assert response.status_code == 201
    again = client.get(dataset_url(project, response.json["id"]) + "export/", headers=headers).json
    assert again == exported
    # The summaries were filled by the import.
    query = client.post(dataset_url(project, response.json["id"]) + "images/query/", headers=headers).json
    assert {key: sorted(values) for key, values in query["attributes"].items()} == {
        "well": ["A01", "B03"], "n": [1], "f": [1.5]
    }
    assert sorted(query["types"]) == ["is_3D", "ok"]
    # Defaults: no images, empty filters.
    response = client.post(datasets_url(project) + "import/", json={"name": "n", "zarr_dir": "/z"}, headers=headers)
    assert response.status_code == 201
    assert response.json["filters"] == EMPTY_FILTERS


def test_import_dataset_errors(client, alice):
    _, headers = alice
    project = create_project(client, headers)
    url = datasets_url(project) + "import/"
    body = {"name": "n", "zarr_dir": "/zarr/plate", "images": [{"zarr_url": "/zarr/plate/x"}, {"zarr_url": "/zarr/other"}]}
    response = client.post(url, json=body, headers=headers)
    assert (response.status_code, response.json) == (
        422,
        {"detail": "Cannot import dataset: zarr_url /zarr/other is not relative to zarr_dir=/zarr/plate."},
    )
    # Plain string prefix: "/zarr/plate" accepts "/zarr/plateX/y".
    body["images"][1] = {"zarr_url": "/zarr/plateX/y"}
    assert client.post(url, json=body, headers=headers).status_code == 201
    body["images"] = [{"zarr_url": "/zarr/plate/x"}, {"zarr_url": "/zarr/plate/x/"}]
    response = client.post(url, json=body, headers=headers)
    assert (response.status_code, response.json) == (
        422,
        {"detail": "Cannot import dataset: zarr_url /zarr/plate/x appears more than once."},
    )
    cases = [
        ({"name": "n"}, ["body", "zarr_dir"], "field required"),
        ({"zarr_dir": "/z"}, ["body", "name"], "field required"),
        ({"name": "n", "zarr_dir": "/z", "history": []}, ["body", "history"], "extra fields not permitted"),
        ({"name": "n", "zarr_dir": "z"}, ["body", "zarr_dir"], "URLs must begin with '/' or 's3'."),
        ({"name": "n", "zarr_dir": "/z", "images": [{"zarr_url": "/z/a", "attributes": {"a": None}}]},
         ["body", "images", 0, "attributes"],
         "SingleImage.attributes[a] must be a scalar (int, float, str or bool). Given None (<class 'NoneType'>)"),
        ({"name": "n", "zarr_dir": "/z", "images": [{"origin": "/z"}]}, ["body", "images", 0, "zarr_url"],
         "field required"),
        ({"name": "n", "zarr_dir": "/z", "filters": None}, ["body", "filters"], "none is not an allowed value"),
    ]
    for body, loc, msg in cases:
        assert single_error(client.post(url, json=body, headers=headers)) == (loc, msg), body
    # Nothing was created by the failed imports.
    assert len(client.get(datasets_url(project), headers=headers).json) == 1
