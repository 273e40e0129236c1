"""`/admin/v2`: task_groups."""
from flask import Blueprint

blueprint = Blueprint("admin_task_groups", __name__, url_prefix="/admin/v2")
