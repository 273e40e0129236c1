"""A third-party distribution adds a runner backend through the `fractal_server` entry points."""
import subprocess
import sys

import pytest
from servers import Deployment, free_port

from fractal_server import __version__
from fractal_server.plugins.manager import available_backends, load_plugins

SETUP = """
from setuptools import setup

setup(
    name="fractal-thirdparty-backend",
    version="0.1.0",
    py_modules=["fractal_thirdparty_backend"],
    entry_points={"fractal_server": ["thirdparty = fractal_thirdparty_backend"]},
)
"""

MODULE = """
import os

from fractal_server.config.errors import FractalConfigurationError
from fractal_server.plugins import hookimpl
from fractal_server.runner.backend import RunnerBackend


def check_settings(settings):
    if os.environ.get("THIRDPARTY_BROKEN"):
        raise FractalConfigurationError("thirdparty backend: THIRDPARTY_BROKEN is set")


def create_runner(context):
    raise NotImplementedError


@hookimpl
def fractal_runner_backends():
    return [RunnerBackend("thirdparty", check_settings, create_runner)]
"""

ERROR_PREFIX = "fractalctl: configuration error: "


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder, meant for PYTHONPATH, where the third-party plugin is installed."""
    root = tmp_path_factory.mktemp("thirdparty")
    package = root / "package"
    package.mkdir()
    (package / "setup.py").write_text(SETUP)
    (package / "fractal_thirdparty_backend.py").write_text(MODULE)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--target", str(root / "site"), str(package)],
        check=True,
    )
    return root / "site"


@pytest.fixture
def thirdparty(site, postgres_db, tmp_path):
    """Servers and `fractalctl` that see the plugin and use its backend (on the session's database)."""
    with Deployment(tmp_path, postgres_db, PYTHONPATH=str(site), FRACTAL_RUNNER_BACKEND="thirdparty") as deployment:
        yield deployment


def configuration_error(result: subprocess.CompletedProcess) -> str:
    """The one-line message `fractalctl` exits with."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last_line = result.stderr.splitlines()[-1]
    assert last_line.startswith(ERROR_PREFIX)
    return last_line.removeprefix(ERROR_PREFIX)


def test_plugins_command_lists_the_plugin_and_its_backend(thirdparty):
    result = thirdparty.fractalctl("plugins")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "thirdparty (fractal-thirdparty-backend 0.1.0): fractal_runner_backends" in lines
    backends = lines[-1].removeprefix("runner backends: ").split(", ")
    assert "thirdparty" in backends


def test_server_starts_with_the_thirdparty_backend(thirdparty):
    thirdparty.set_db()
    server = thirdparty.start(wait=False)
    try:
        assert server.wait_alive() == {"alive": True, "version": __version__}
    finally:
        returncode = server.stop()
    assert returncode == 0
    assert "Runner backend: thirdparty" in server.log()


def test_the_plugin_settings_check_runs_at_start_up(thirdparty):
    result = thirdparty.fractalctl("start", "--port", str(free_port()), THIRDPARTY_BROKEN="1")
    assert configuration_error(result) == "thirdparty backend: THIRDPARTY_BROKEN is set"


def installed_backends() -> str:
    """As listed by the error messages of a subprocess that sees the plugin."""
    return ", ".join(sorted([*available_backends(load_plugins()), "thirdparty"]))


def test_an_unknown_backend_lists_the_installed_ones(thirdparty):
    result = thirdparty.fractalctl("start", "--port", str(free_port()), FRACTAL_RUNNER_BACKEND="nobody")
    assert configuration_error(result) == (
        "FRACTAL_RUNNER_BACKEND=nobody but no installed plugin provides it "
        f"(installed backends: {installed_backends()}); install the plugin that provides it "
        "(the README's Deployment section lists the backend packages)."
    )
