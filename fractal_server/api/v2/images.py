"""`/api/v2`: the image list of a dataset (stored through `fractal_server.images.store`)."""
from flask import Blueprint
from sqlalchemy.exc import IntegrityError

from fractal_server.api.v2.access import get_dataset
from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models import User
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import NO_BODY, endpoint
from fractal_server.images import store
from fractal_server.schemas.datasets import (
    ImageDeleteParams,
    ImagePage,
    ImageQuery,
    ImageQueryParams,
    ImageRead,
)
from fractal_server.schemas.filters import SingleImage, SingleImageUpdate

blueprint = Blueprint("v2_images", __name__, url_prefix="/api/v2")

IMAGES = "/project/<project_id>/dataset/<dataset_id>/images/"


def not_found(zarr_url: str, dataset_id: int) -> ApiError:
    return ApiError(404, f"No image with zarr_url '{zarr_url}' in DatasetV2 {dataset_id}.")


@endpoint(blueprint, "POST", IMAGES, access=Access.ACTIVE, body=SingleImage, status=201)
def add_image(user: User, project_id: int, dataset_id: int, body: SingleImage):
    """Append an image to a dataset."""
    dataset = get_dataset(user, project_id, dataset_id)
    zarr_dir, zarr_url = dataset.zarr_dir, body.zarr_url
    if not zarr_url.startswith(zarr_dir):
        raise ApiError(422, f"Cannot create image with zarr_url which is not relative to {zarr_dir}.")
    if zarr_url == zarr_dir:
        raise ApiError(422, f"`SingleImage.zarr_url` cannot be equal to `Dataset.zarr_dir`: {zarr_dir}")
    duplicate = ApiError(422, [f"Image with zarr_url '{zarr_url}' already in DatasetV2 {dataset_id}"])
    if store.get_image(dataset, zarr_url) is not None:
        raise duplicate
    try:
        store.add_image(dataset, body.model_dump())
        db.session.commit()
    except IntegrityError:  # added by a concurrent request since the check
        db.session.rollback()
        raise duplicate from None
    return NO_BODY


@endpoint(
    blueprint, "POST", IMAGES + "query/", access=Access.ACTIVE, query=ImageQueryParams,
    body=ImageQuery, body_required=False, response=ImagePage,
)
def query_images(user: User, project_id: int, dataset_id: int, query: ImageQueryParams, body: ImageQuery):
    """A page of the images matching optional filters, with value summaries."""
    if query.page < 1:
        raise ApiError(422, f"Invalid pagination parameter: page={query.page} < 1")
    dataset = get_dataset(user, project_id, dataset_id)
    if query.page_size is not None and query.page_size <= 0:
        raise ApiError(422, f"Invalid pagination parameter: page_size={query.page_size} <= 0")
    body = body or ImageQuery()
    dataset_filters = [dataset.filters] if query.use_dataset_filters else []
    summary = store.summary(dataset, dataset_filters)
    page = store.query_page(
        dataset,
        filters=[*dataset_filters, body.filters.model_dump()],
        zarr_url=body.zarr_url,
        page=query.page,
        page_size=query.page_size,
    )
    # A dict, not an `ImagePage`: the response model validates it only once.
    return {
        "total_count": page.total,
        "page_size": page.page_size,
        "current_page": page.page,
        "attributes": summary.attributes,
        "types": summary.types,
        "images": page.images,
    }


@endpoint(blueprint, "PATCH", IMAGES, access=Access.ACTIVE, body=SingleImageUpdate, response=ImageRead)
def patch_image(user: User, project_id: int, dataset_id: int, body: SingleImageUpdate):
    """Replace the attributes and/or types of an image."""
    dataset = get_dataset(user, project_id, dataset_id)
    image = store.update_image(dataset, body.zarr_url, attributes=body.attributes, types=body.types)
    if image is None:
        raise not_found(body.zarr_url, dataset_id)
    db.session.commit()
    return image


@endpoint(blueprint, "DELETE", IMAGES, access=Access.ACTIVE, query=ImageDeleteParams, status=204)
def delete_image(user: User, project_id: int, dataset_id: int, query: ImageDeleteParams):
    """Remove an image from a dataset."""
    dataset = get_dataset(user, project_id, dataset_id)
    if not store.remove_image(dataset, query.zarr_url):
        raise not_found(query.zarr_url, dataset_id)
    db.session.commit()
    return NO_BODY
