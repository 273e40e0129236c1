"""`/api/v2`: workflow_tasks."""
from flask import Blueprint

blueprint = Blueprint("v2_workflow_tasks", __name__, url_prefix="/api/v2")
