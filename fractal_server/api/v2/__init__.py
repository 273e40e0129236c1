"""The `/api/v2` blueprints, one module per resource."""
from fractal_server.api.v2 import (
    datasets,
    images,
    jobs,
    projects,
    task_groups,
    tasks,
    workflow_tasks,
    workflows,
)

BLUEPRINTS = [
    projects.blueprint,
    datasets.blueprint,
    images.blueprint,
    workflows.blueprint,
    workflow_tasks.blueprint,
    tasks.blueprint,
    task_groups.blueprint,
    jobs.blueprint,
]
