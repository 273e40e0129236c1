"""`/admin/v2`: projects."""
from flask import Blueprint

blueprint = Blueprint("admin_projects", __name__, url_prefix="/admin/v2")
