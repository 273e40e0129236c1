"""`/api/v2`: workflows."""
from flask import Blueprint

blueprint = Blueprint("v2_workflows", __name__, url_prefix="/api/v2")
