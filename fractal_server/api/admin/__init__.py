"""The `/admin/v2` blueprints (superusers only)."""
from fractal_server.api.admin import jobs, projects, task_groups, tasks

BLUEPRINTS = [projects.blueprint, tasks.blueprint, task_groups.blueprint, jobs.blueprint]
