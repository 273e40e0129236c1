"""Request and response shapes of projects."""
from pydantic import BaseModel

from fractal_server.http.timestamps import Timestamp
from fractal_server.schemas.validators import NonEmptyNameStr, StrictApiModel


class ProjectCreate(StrictApiModel):
    name: NonEmptyNameStr


class ProjectUpdate(StrictApiModel):
    name: NonEmptyNameStr = None


class ProjectRead(BaseModel):
    id: int
    name: str
    timestamp_created: Timestamp
