"""`/api/v2`: datasets."""
from flask import Blueprint

blueprint = Blueprint("v2_datasets", __name__, url_prefix="/api/v2")
