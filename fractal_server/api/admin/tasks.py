"""`/admin/v2`: tasks."""
from flask import Blueprint

blueprint = Blueprint("admin_tasks", __name__, url_prefix="/admin/v2")
