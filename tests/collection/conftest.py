"""Fixtures of the task-collection tests.

Collections run for real: a virtual environment per task group, built in
a background thread of the test process by pip (which reaches the package
index for pip and setuptools). The mock task package of `tests/mock_tasks`
is built into a wheel once per session.
"""
from pathlib import Path

import pytest
from appdb import reset_database

from .helpers import build_mock_wheel, empty_folder


@pytest.fixture(scope="session")
def mock_wheel(tmp_path_factory) -> Path:
    """`fractal_tasks_mock-<version>-py3-none-any.whl`, built from `tests/mock_tasks`."""
    return build_mock_wheel(tmp_path_factory.mktemp("mock-wheel"))


@pytest.fixture
def verified_users() -> bool:
    """`alice`, `bob` and `carol` are verified here: collecting tasks is for verified users."""
    return True


@pytest.fixture(scope="session")
def tasks_dir(app) -> Path:
    return Path(app.extensions["fractal"].settings.FRACTAL_TASKS_DIR)


@pytest.fixture
def empty_tasks_dir(tasks_dir) -> Path:
    """FRACTAL_TASKS_DIR, emptied (user ids, hence paths, repeat from test to test)."""
    empty_folder(tasks_dir)
    return tasks_dir


@pytest.fixture(scope="module")
def module_client(app, tasks_dir):
    """A test client on a database emptied once for the whole module (for work shared by its tests)."""
    reset_database(app)
    empty_folder(tasks_dir)
    return app.test_client()


@pytest.fixture
def no_background(monkeypatch):
    """Pip collections are stored but not run; the ids of their activities are listed."""
    started = []
    monkeypatch.setattr(
        "fractal_server.task_collection.pip_collector.start_in_background",
        lambda procedure, activity_id: started.append(activity_id),
    )
    return started
