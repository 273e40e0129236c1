"""`/api/v2`: datasets (their images are in `images.py`)."""
import json

from flask import Blueprint, Response
from sqlalchemy import select

from fractal_server.api.v2.access import get_dataset, get_project, user_project_ids
from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models.jobs import submitted_job_ids
from fractal_server.db.models import DatasetV2, JobV2, ProjectV2, User
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import NO_BODY, endpoint
from fractal_server.images import store
from fractal_server.schemas.datasets import (
    DatasetCreate,
    DatasetExport,
    DatasetImport,
    DatasetQuery,
    DatasetRead,
    DatasetUpdate,
)
from fractal_server.schemas.filters import Filters
from fractal_server.schemas.validators import normalize_url
from fractal_server.slugs import slugify

blueprint = Blueprint("v2_datasets", __name__, url_prefix="/api/v2")

DATASET = "/project/<project_id>/dataset/<dataset_id>/"


def dataset_read(dataset: DatasetV2, history: bool = True) -> DatasetRead:
    read = DatasetRead.model_validate(dataset, from_attributes=True)
    return read if history else read.model_copy(update={"history": []})


def default_zarr_dir(project_dir: str, project: ProjectV2, dataset: DatasetV2) -> str:
    return normalize_url(
        f"{project_dir}/fractal/{project.id}_{slugify(project.name)}/{dataset.id}_{slugify(dataset.name)}"
    )


@endpoint(blueprint, "POST", "/project/<project_id>/dataset/", access=Access.ACTIVE, body=DatasetCreate, response=DatasetRead, status=201)
def create_dataset(user: User, project_id: int, body: DatasetCreate):
    """Create a dataset in a project."""
    project = get_project(user, project_id)
    project_dir = user.settings.project_dir if user.settings else None
    if body.zarr_dir is None and project_dir is None:
        raise ApiError(422, "Both 'dataset.zarr_dir' and 'user.settings.project_dir' are null")
    dataset = DatasetV2(
        project_id=project_id,
        name=body.name,
        zarr_dir=body.zarr_dir or "",
        filters=body.filters.model_dump(),
        history=[],
    )
    db.session.add(dataset)
    db.session.flush()
    if body.zarr_dir is None:
        dataset.zarr_dir = default_zarr_dir(project_dir, project, dataset)
    db.session.commit()
    return dataset


@endpoint(blueprint, "GET", "/project/<project_id>/dataset/", access=Access.ACTIVE, query=DatasetQuery, response=list[DatasetRead])
def list_project_datasets(user: User, project_id: int, query: DatasetQuery):
    """The datasets of a project."""
    get_project(user, project_id)
    datasets = db.session.scalars(
        select(DatasetV2).where(DatasetV2.project_id == project_id).order_by(DatasetV2.id)
    )
    return [dataset_read(dataset, query.history) for dataset in datasets]


@endpoint(blueprint, "GET", "/dataset/", access=Access.ACTIVE, query=DatasetQuery, response=list[DatasetRead])
def list_user_datasets(user: User, query: DatasetQuery):
    """The datasets of all the user's projects."""
    datasets = db.session.scalars(
        select(DatasetV2).where(DatasetV2.project_id.in_(user_project_ids(user))).order_by(DatasetV2.id)
    )
    return [dataset_read(dataset, query.history) for dataset in datasets]


@endpoint(blueprint, "GET", DATASET, access=Access.ACTIVE, response=DatasetRead)
def read_dataset(user: User, project_id: int, dataset_id: int):
    """One dataset."""
    return get_dataset(user, project_id, dataset_id)


@endpoint(blueprint, "PATCH", DATASET, access=Access.ACTIVE, body=DatasetUpdate, response=DatasetRead)
def patch_dataset(user: User, project_id: int, dataset_id: int, body: DatasetUpdate):
    """Change name, zarr_dir (only while there are no images) or filters."""
    dataset = get_dataset(user, project_id, dataset_id)
    if body.zarr_dir is not None and store.count(dataset) > 0:
        raise ApiError(422, "Cannot modify `zarr_dir` because the dataset has a non-empty image list.")
    if body.name is not None:
        dataset.name = body.name
    if body.zarr_dir is not None:
        dataset.zarr_dir = body.zarr_dir
    if body.filters is not None:
        dataset.filters = body.filters.model_dump()
    db.session.commit()
    return dataset


@endpoint(blueprint, "DELETE", DATASET, access=Access.ACTIVE, status=204)
def delete_dataset(user: User, project_id: int, dataset_id: int):
    """Delete a dataset and its images; its jobs stay, detached."""
    dataset = get_dataset(user, project_id, dataset_id)
    active = submitted_job_ids(JobV2.dataset_id == dataset_id)
    if active:
        ids = ", ".join(map(str, active))
        raise ApiError(422, f"Cannot delete dataset {dataset_id} because it is linked to active job(s) {ids}.")
    db.session.delete(dataset)
    db.session.commit()
    return NO_BODY


@endpoint(blueprint, "GET", DATASET + "export/", access=Access.ACTIVE, response=DatasetExport)
def export_dataset(user: User, project_id: int, dataset_id: int):
    """A dataset with its whole image list, as import accepts it."""
    dataset = get_dataset(user, project_id, dataset_id)
    exported = {
        "name": dataset.name,
        "zarr_dir": dataset.zarr_dir,
        "images": list(store.iter_images(dataset)),
        "filters": Filters.model_validate(dataset.filters).model_dump(),
    }
    # Stored images are valid already: skip re-validating a list of any size.
    return Response(json.dumps(exported), status=200, mimetype="application/json")


@endpoint(blueprint, "POST", "/project/<project_id>/dataset/import/", access=Access.ACTIVE, body=DatasetImport, response=DatasetRead, status=201)
def import_dataset(user: User, project_id: int, body: DatasetImport):
    """Create a dataset with a given image list."""
    get_project(user, project_id)
    for image in body.images:
        if not image.zarr_url.startswith(body.zarr_dir):
            raise ApiError(
                422,
                f"Cannot import dataset: zarr_url {image.zarr_url} is not relative to zarr_dir={body.zarr_dir}.",
            )
    seen = set()
    for image in body.images:
        if image.zarr_url in seen:
            raise ApiError(422, f"Cannot import dataset: zarr_url {image.zarr_url} appears more than once.")
        seen.add(image.zarr_url)
    dataset = DatasetV2(
        project_id=project_id,
        name=body.name,
        zarr_dir=body.zarr_dir,
        filters=body.filters.model_dump(),
        history=[],
    )
    db.session.add(dataset)
    db.session.flush()
    store.add_images(dataset, (image.model_dump() for image in body.images))
    db.session.commit()
    return dataset
