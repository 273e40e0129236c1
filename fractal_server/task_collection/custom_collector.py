"""The built-in `custom` collector: `POST /api/v2/task/collect/custom/` (`task-collection.md` 7).

Tasks of a manifest, run by an interpreter that already exists (no virtual
environment, no activity): the task group, of origin `other`, is created
synchronously.
"""
from pathlib import Path

from flask import Blueprint

from fractal_server.task_group_rules import check_task_group_unique, resolve_user_group_id
from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models import TaskGroupV2, User
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import endpoint
from fractal_server.plugins import hookimpl
from fractal_server.schemas.task_collection import TaskCollectCustom
from fractal_server.schemas.tasks import TaskCreateQuery, TaskRead
from fractal_server.server_state import server_state
from fractal_server.task_collection.collectors import TaskCollector
from fractal_server.task_collection.manifest import ManifestError, tasks_from_manifest
from fractal_server.task_collection.records import task_row
from fractal_server.task_collection.hosts import TaskHost, TaskHostError, task_host_for

# Run by the given interpreter with the module name as its only argument.
FIND_PACKAGE_ROOT = (
    "import importlib.util, pathlib, sys; "
    "print(pathlib.Path(importlib.util.find_spec(sys.argv[1]).origin).parent)"
)
FIND_TIMEOUT_SECONDS = 60


def create_blueprint() -> Blueprint:
    blueprint = Blueprint("task_collect_custom", __name__)

    @endpoint(
        blueprint,
        "POST",
        "/",
        access=Access.VERIFIED,
        query=TaskCreateQuery,
        body=TaskCollectCustom,
        response=list[TaskRead],
        status=201,
    )
    def collect_custom(user: User, query: TaskCreateQuery, body: TaskCollectCustom):
        """Create a task group from a manifest, for an existing Python environment."""
        return collect(user, query, body)

    return blueprint


@hookimpl
def fractal_task_collectors():
    return [TaskCollector(name="custom", create_blueprint=create_blueprint)]


def collect(user: User, query: TaskCreateQuery, body: TaskCollectCustom):
    user_group_id = resolve_user_group_id(user, query.private, query.user_group_id)
    backend = server_state().backend
    if backend.task_host is not None:
        if body.package_root is None:
            raise ApiError(422, f"Cannot infer 'package_root' with '{backend.name}' backend.")
        package_root = body.package_root
    else:
        if not Path(body.python_interpreter).is_file():
            raise ApiError(
                422, f"task_collect.python_interpreter='{body.python_interpreter}' doesn't exist or is not a file."
            )
        if body.package_root is not None and not Path(body.package_root).is_dir():
            raise ApiError(422, f"task_collect.package_root='{body.package_root}' doesn't exist or is not a directory.")
        package_root = body.package_root or find_package_root(
            task_host_for(user), body.python_interpreter, body.package_name
        )
    try:
        tasks = tasks_from_manifest(
            body.manifest, python_bin=body.python_interpreter, package_root=package_root, version=body.version
        )
    except ManifestError as error:
        raise ApiError(422, str(error)) from None
    check_task_group_unique(user, body.label, None, user_group_id)
    task_group = TaskGroupV2(
        user_id=user.id,
        user_group_id=user_group_id,
        origin="other",
        pkg_name=body.label,
        version=None,
        active=True,
        task_list=[task_row(task) for task in tasks],
    )
    db.session.add(task_group)
    db.session.commit()
    return task_group.task_list


def find_package_root(host: TaskHost, python_interpreter: str, package_name: str) -> str:
    """The folder of the module `package_name` (with `-` read as `_`), as the interpreter sees it."""
    module = package_name.replace("-", "_")
    try:
        done = host.run([python_interpreter, "-c", FIND_PACKAGE_ROOT, module], timeout=FIND_TIMEOUT_SECONDS)
        output, error, failed = done.stdout.strip(), done.stderr.strip(), done.returncode != 0
    except TaskHostError as exception:
        output, error, failed = "", str(exception), True
    if failed or not output or "\n" in output:
        raise ApiError(422, f"Cannot determine 'package_root'.\nOriginal output: {output}\nOriginal error: {error}")
    return output
