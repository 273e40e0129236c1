"""`/api/v2`: tasks."""
from flask import Blueprint

blueprint = Blueprint("v2_tasks", __name__, url_prefix="/api/v2")
