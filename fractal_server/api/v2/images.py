"""`/api/v2`: images."""
from flask import Blueprint

blueprint = Blueprint("v2_images", __name__, url_prefix="/api/v2")
