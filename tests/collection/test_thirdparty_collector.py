"""A third-party task collector, the one of the README, is mounted without touching the core."""
import re
import sys
import types
from pathlib import Path

import pytest

import fractal_server.app
from fractal_server.app import create_app
from fractal_server.config.errors import FractalConfigurationError
from fractal_server.plugins.manager import load_plugins

from .helpers import MOCK_PACKAGE

README = Path(__file__).parents[2] / "README.md"


def readme_plugin() -> types.ModuleType:
    """The module of the README's example (`my_collector/plugin.py`)."""
    blocks = re.findall(r"```python\n(# my_collector/plugin.py\n.*?)```", README.read_text(), re.S)
    module = types.ModuleType("my_collector_plugin")
    exec(compile(blocks[0], "my_collector/plugin.py", "exec"), module.__dict__)
    return module


@pytest.fixture
def plugin_app(environ, monkeypatch):
    plugin = readme_plugin()

    def with_the_plugin():
        manager = load_plugins()
        manager.register(plugin, name="my_collector")
        return manager

    monkeypatch.setattr(fractal_server.app, "load_plugins", with_the_plugin)
    return create_app(environ=environ)


def test_the_readme_collector(plugin_app, make_user):
    _, headers = make_user("user@example.org", is_verified=True)
    client = plugin_app.test_client()
    body = {"label": "mock", "python_interpreter": sys.executable, "package_root": str(MOCK_PACKAGE / "fractal_tasks_mock")}
    response = client.post("/api/v2/task/collect/folder/", json=body, headers=headers)
    assert response.status_code == 201, response.json
    assert response.json[0]["command_non_parallel"].startswith(f"{sys.executable} {MOCK_PACKAGE}/fractal_tasks_mock/")
    response = client.post("/api/v2/task/collect/folder/", json={**body, "label": "other", "package_root": "/nowhere"},
                           headers=headers)
    assert response.status_code == 422
    assert response.json["detail"].startswith("Cannot read the manifest /nowhere/__FRACTAL_MANIFEST__.json")
    # The built-in collectors are still there.
    assert client.post("/api/v2/task/collect/pip/", json={}, headers=headers).status_code == 422


def test_two_collectors_with_one_name_are_refused(environ, monkeypatch):
    def twice():
        manager = load_plugins()
        manager.register(readme_plugin(), name="first")
        manager.register(readme_plugin(), name="second")
        return manager

    monkeypatch.setattr(fractal_server.app, "load_plugins", twice)
    with pytest.raises(FractalConfigurationError, match="Two installed plugins provide the task collector 'folder'"):
        create_app(environ=environ)
