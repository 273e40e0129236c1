"""Request and response shapes of projects."""
from pydantic import BaseModel

from fractal_server.http.timestamps import Timestamp
from fractal_server.schemas.validators import NonEmptyStr, StrictApiModel


class ProjectCreate(StrictApiModel):
    name: NonEmptyStr


class ProjectUpdate(StrictApiModel):
    name: NonEmptyStr = None


class ProjectRead(BaseModel):
    id: int
    name: str
    timestamp_created: Timestamp
