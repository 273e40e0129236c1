"""`/api/v2`: task_groups."""
from flask import Blueprint

blueprint = Blueprint("v2_task_groups", __name__, url_prefix="/api/v2")
