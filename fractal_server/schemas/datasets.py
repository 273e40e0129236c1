"""Request and response shapes of datasets and of their images."""
from typing import Any, Optional

from pydantic import BaseModel

from fractal_server.http.timestamps import Timestamp
from fractal_server.schemas.filters import Filters, SingleImage
from fractal_server.schemas.projects import ProjectRead
from fractal_server.schemas.validators import ApiModel, NameStr, NonEmptyNameStr, QueryModel, StrictApiModel, UrlStr


class DatasetCreate(StrictApiModel):
    name: NonEmptyNameStr
    zarr_dir: Optional[UrlStr] = None
    filters: Filters = Filters()


class DatasetUpdate(StrictApiModel):
    """Omitted fields are kept; an explicit null is an error for each of them."""

    name: NonEmptyNameStr = None
    zarr_dir: UrlStr = None
    filters: Filters = None


class DatasetImport(StrictApiModel):
    name: NameStr
    zarr_dir: UrlStr
    images: list[SingleImage] = []
    filters: Filters = Filters()


class DatasetQuery(QueryModel):
    history: bool = True


class DatasetRead(BaseModel):
    id: int
    name: str
    project_id: int
    project: ProjectRead
    history: list[dict[str, Any]]
    timestamp_created: Timestamp
    zarr_dir: str
    filters: Filters


class ImageRead(BaseModel):
    """An image as the API returns it (stored images are already valid)."""

    zarr_url: str
    origin: Optional[str] = None
    attributes: dict[str, Any] = {}
    types: dict[str, bool] = {}


class DatasetExport(BaseModel):
    name: str
    zarr_dir: str
    images: list[ImageRead]
    filters: Filters


class ImageQueryParams(QueryModel):
    use_dataset_filters: bool = False
    page: int = 1
    page_size: Optional[int] = None


class ImageQuery(ApiModel):
    """`zarr_url` is compared as given (not normalised)."""

    zarr_url: Optional[str] = None
    filters: Filters = Filters()


class ImagePage(BaseModel):
    total_count: int
    page_size: int
    current_page: int
    attributes: dict[str, list[Any]]
    types: list[str]
    images: list[ImageRead]


class ImageDeleteParams(QueryModel):
    zarr_url: str
