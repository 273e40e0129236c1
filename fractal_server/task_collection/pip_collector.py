"""The built-in `pip` collector: `POST /api/v2/task/collect/pip/` (`api-v2.md` 10).

The endpoint runs the checks of the contract in order, stores the task
group and a `pending` activity, and starts the background collection
(`pip_collection`); the client polls the activity.
"""
from pathlib import Path, PurePosixPath
from typing import Optional

from flask import Blueprint
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from fractal_server.runner.user_settings import check_user_settings
from fractal_server.task_group_rules import check_task_group_unique, resolve_user_group_id
from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models import TaskGroupActivityV2, TaskGroupV2, User
from fractal_server.http.errors import ApiError
from fractal_server.http.routing import endpoint
from fractal_server.plugins import hookimpl
from fractal_server.schemas.task_collection import TaskCollectPip
from fractal_server.schemas.tasks import TaskCreateQuery, TaskGroupActivityRead
from fractal_server.server_state import server_state
from fractal_server.task_collection.background import start_in_background
from fractal_server.task_collection.collectors import TaskCollector
from fractal_server.task_collection.hosts import task_host_for
from fractal_server.task_collection.packages import InvalidWheelName, normalize_package_name, parse_wheel_name
from fractal_server.task_collection.pip_collection import collect_pip, tasks_python
from fractal_server.task_collection.pypi import resolve_version
from fractal_server.task_collection.records import pending_activity


def create_blueprint() -> Blueprint:
    blueprint = Blueprint("task_collect_pip", __name__)

    @endpoint(
        blueprint,
        "POST",
        "/",
        access=Access.VERIFIED,
        query=TaskCreateQuery,
        body=TaskCollectPip,
        response=TaskGroupActivityRead,
        status=202,
    )
    def collect_pip_package(user: User, query: TaskCreateQuery, body: TaskCollectPip):
        """Collect a package (from the index or a wheel file) into a new task group, in the background."""
        activity = request_collection(user, query, body)
        start_in_background(collect_pip, activity.id)
        return activity

    return blueprint


@hookimpl
def fractal_task_collectors():
    return [TaskCollector(name="pip", create_blueprint=create_blueprint)]


def request_collection(user: User, query: TaskCreateQuery, body: TaskCollectPip) -> TaskGroupActivityV2:
    """Checks of the contract, in order; then the task group and its pending activity."""
    state = server_state()
    settings = state.settings
    python_version = body.python_version or settings.FRACTAL_TASKS_PYTHON_DEFAULT_VERSION
    if tasks_python(settings, python_version) is None:
        raise ApiError(422, f"Python version {python_version} is not available for Fractal task collection.")

    wheel_path: Optional[str] = None
    if body.is_wheel:
        try:
            wheel = parse_wheel_name(body.package)
        except InvalidWheelName as error:
            name = Path(body.package).name
            raise ApiError(422, [f"Invalid wheel-file name {name}. Original error: {error}"]) from None
        origin, pkg_name, version, wheel_path = "wheel-file", wheel.pkg_name, wheel.version, body.package
    else:
        origin, pkg_name = "pypi", normalize_package_name(body.package)
        version = resolve_version(body.package, body.package_version)

    user_group_id = resolve_user_group_id(user, query.private, query.user_group_id)
    check_user_settings(user, state.backend)
    host = task_host_for(user)
    path = PurePosixPath(host.base_dir) / str(user.id) / pkg_name / version

    check_task_group_unique(user, pkg_name, version, user_group_id)
    check_path_is_free(path)
    # A remote host is not reached while answering: the background work checks it.
    if not host.remote and host.exists(str(path)):
        raise ApiError(422, f"{path} already exists.")
    # A wheel is a file of the server's machine (uploaded to a remote host by the background work).
    if wheel_path is not None and not Path(wheel_path).is_file():
        raise ApiError(422, f"No such file: {wheel_path}.")

    task_group = TaskGroupV2(
        user_id=user.id,
        user_group_id=user_group_id,
        origin=origin,
        pkg_name=pkg_name,
        version=version,
        python_version=python_version,
        path=str(path),
        venv_path=str(path / "venv"),
        wheel_path=wheel_path,
        pip_extras=body.package_extras,
        pinned_package_versions=body.pinned_package_versions or {},
        active=True,
    )
    try:
        db.session.add(task_group)
        db.session.flush()
        activity = pending_activity(task_group, "collect")
        db.session.add(activity)
        db.session.commit()
        db.session.refresh(activity)  # the answer shows it as stored, whatever the work does meanwhile
    except IntegrityError:
        # Another request stored the same package version a moment ago.
        db.session.rollback()
        check_task_group_unique(user, pkg_name, version, user_group_id)
        check_path_is_free(path)
        raise ApiError(422, f"Another task-group already has path={path}.") from None
    return activity


def check_path_is_free(path: PurePosixPath) -> None:
    other = db.session.scalar(select(TaskGroupV2).where(TaskGroupV2.path == str(path)))
    if other is not None:
        raise ApiError(
            422,
            f"Another task-group already has path={path}.\n"
            f"It is task group {other.id} ({other.pkg_name} {other.version}, owner user {other.user_id}).",
        )
