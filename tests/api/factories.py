"""Rows created directly through the models, for tests that need them as fixtures.

Every helper takes the Flask `app`, works in its own app context and returns ids.
"""
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from fractal_server.db import db
from fractal_server.db.models import JobV2, LinkUserGroup, TaskGroupV2, TaskV2, UserGroup

_COMMANDS = {
    "parallel": {"command_parallel": "python3 run.py"},
    "non_parallel": {"command_non_parallel": "python3 init.py"},
    "compound": {"command_non_parallel": "python3 init.py", "command_parallel": "python3 run.py"},
}


def all_group_id(app) -> int:
    with app.app_context():
        return db.session.scalar(select(UserGroup.id).where(UserGroup.name == "All"))


def create_user_group(app, name: str, user_ids=(), joined_days_ago: float = 0) -> int:
    """A user group with the given members; `joined_days_ago` backdates the memberships."""
    joined = datetime.now(tz=timezone.utc) - timedelta(days=joined_days_ago)
    with app.app_context():
        group = UserGroup(name=name)
        db.session.add(group)
        db.session.flush()
        for user_id in user_ids:
            db.session.add(LinkUserGroup(group_id=group.id, user_id=user_id, timestamp_created=joined))
        db.session.commit()
        return group.id


def create_task_group(
    app, user_id: int, *, pkg_name: str = "fractal-tasks-mock", version="1.0.0",
    user_group_id=None, active: bool = True, **columns,
) -> int:
    """A task group owned by `user_id` (private unless `user_group_id` is given)."""
    with app.app_context():
        task_group = TaskGroupV2(
            user_id=user_id, user_group_id=user_group_id, pkg_name=pkg_name,
            version=version, active=active, origin=columns.pop("origin", "other"), **columns,
        )
        db.session.add(task_group)
        db.session.commit()
        return task_group.id


def create_task(app, task_group_id: int, name: str = "task", type: str = "compound", **columns) -> int:
    """A task in the group; the commands follow `type` unless given."""
    with app.app_context():
        task = TaskV2(
            taskgroupv2_id=task_group_id, name=name, type=type, **{**_COMMANDS[type], **columns}
        )
        db.session.add(task)
        db.session.commit()
        return task.id


def create_task_with_group(app, user_id: int, name: str = "task", type: str = "compound", **group_columns) -> int:
    """A task alone in a new task group of the user; returns the task id."""
    task_group_id = create_task_group(app, user_id, **group_columns)
    return create_task(app, task_group_id, name=name, type=type)


def create_job(app, project_id: int, workflow_id: int, *, status: str = "submitted", dataset_id=None) -> int:
    with app.app_context():
        job = JobV2(
            project_id=project_id, workflow_id=workflow_id, dataset_id=dataset_id,
            user_email="user@example.org", project_dump={}, workflow_dump={}, dataset_dump={},
            first_task_index=0, last_task_index=0, status=status,
        )
        db.session.add(job)
        db.session.commit()
        return job.id


def set_job_status(app, job_id: int, status: str) -> None:
    with app.app_context():
        db.session.get(JobV2, job_id).status = status
        db.session.commit()


def remove_from_group(app, group_id: int, user_id: int) -> None:
    with app.app_context():
        db.session.delete(db.session.get(LinkUserGroup, (group_id, user_id)))
        db.session.commit()


def set_task_group_active(app, task_group_id: int, active: bool) -> None:
    with app.app_context():
        db.session.get(TaskGroupV2, task_group_id).active = active
        db.session.commit()


def get_row(app, model, row_id: int):
    """A detached copy of a row's columns, as a dict (None if missing)."""
    with app.app_context():
        row = db.session.get(model, row_id)
        if row is None:
            return None
        return {column.name: getattr(row, column.key) for column in model.__table__.columns}


# --- Through the API (endpoints that are already in place) -------------------


def create_project(client, headers, name: str = "project") -> int:
    response = client.post("/api/v2/project/", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json["id"]


def create_workflow(client, headers, project_id: int, name: str = "workflow") -> int:
    response = client.post(f"/api/v2/project/{project_id}/workflow/", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json["id"]


def add_workflow_task(client, headers, project_id: int, workflow_id: int, task_id: int, **body) -> dict:
    response = client.post(
        f"/api/v2/project/{project_id}/workflow/{workflow_id}/wftask/?task_id={task_id}",
        json=body,
        headers=headers,
    )
    assert response.status_code == 201, response.json
    return response.json
