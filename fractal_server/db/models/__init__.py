"""The v2 data model. Importing this package registers every table."""
from fractal_server.db.models.jobs import JobV2
from fractal_server.db.models.projects import DatasetV2, ImageV2, LinkUserProjectV2, ProjectV2
from fractal_server.db.models.tasks import TaskGroupActivityV2, TaskGroupV2, TaskV2
from fractal_server.db.models.users import LinkUserGroup, OAuthAccount, User, UserGroup, UserSettings
from fractal_server.db.models.workflows import WorkflowTaskV2, WorkflowV2

__all__ = [
    "DatasetV2",
    "ImageV2",
    "JobV2",
    "LinkUserGroup",
    "LinkUserProjectV2",
    "OAuthAccount",
    "ProjectV2",
    "TaskGroupActivityV2",
    "TaskGroupV2",
    "TaskV2",
    "User",
    "UserGroup",
    "UserSettings",
    "WorkflowTaskV2",
    "WorkflowV2",
]
