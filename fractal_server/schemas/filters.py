"""Image filters and images, as the API accepts and returns them."""
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict

from fractal_server.schemas.validators import BOUNDED_STRINGS, UrlStr, clean_keys


def _scalar_attributes(values: dict[str, Any], owner: str, allow_null: bool) -> dict[str, Any]:
    for key, value in values.items():
        if value is None and allow_null:
            continue
        if not isinstance(value, (int, float, str, bool)):
            kinds = "int, float, str, bool, or None" if allow_null else "int, float, str or bool"
            raise ValueError(
                f"{owner}.attributes[{key}] must be a scalar ({kinds}). "
                f"Given {value} ({type(value)})"
            )
    return values


def _filter_attributes(values: dict[str, Any]) -> dict[str, Any]:
    return _scalar_attributes(clean_keys(values), "Filters", allow_null=True)


def _image_attributes(values: dict[str, Any]) -> dict[str, Any]:
    return _scalar_attributes(clean_keys(values), "SingleImage", allow_null=False)


TypesDict = Annotated[dict[str, bool], AfterValidator(clean_keys)]


class Filters(BaseModel):
    """`{attributes: {name: scalar or null}, types: {name: bool}}`."""

    model_config = ConfigDict(extra="forbid", **BOUNDED_STRINGS)

    attributes: Annotated[dict[str, Any], AfterValidator(_filter_attributes)] = {}
    types: TypesDict = {}


class SingleImage(BaseModel):
    """An image as clients send it (unknown keys ignored); urls are normalised."""

    model_config = BOUNDED_STRINGS

    zarr_url: UrlStr
    origin: Optional[UrlStr] = None
    attributes: Annotated[dict[str, Any], AfterValidator(_image_attributes)] = {}
    types: TypesDict = {}


class SingleImageUpdate(BaseModel):
    """`attributes`/`types`, when given and not null, replace the image's maps."""

    model_config = BOUNDED_STRINGS

    zarr_url: UrlStr
    attributes: Optional[Annotated[dict[str, Any], AfterValidator(_image_attributes)]] = None
    types: Optional[TypesDict] = None

