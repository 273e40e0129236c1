"""Start-up checks of the backends, with every backend plugin installed (tox env `backends`)."""
import json

import pytest
from servers import BIN, make_environ, run, startup_error

from fractal_server import __version__
from fractal_server.app import create_app

SLURM_CONFIG = {
    "default_slurm_config": {"partition": "main", "cpus_per_task": 1, "mem": "4G"},
    "batching_config": {
        "target_cpus_per_job": 4,
        "max_cpus_per_job": 8,
        "target_mem_per_job": "8G",
        "max_mem_per_job": "16G",
        "target_num_jobs": 2,
        "max_num_jobs": 4,
    },
}


def backend_of(environ) -> str:
    return create_app(environ=environ).extensions["fractal"].backend.name


@pytest.fixture
def ssh_environ(tmp_path, monkeypatch):
    """A valid slurm_ssh configuration, with a fake `ssh` as the only command on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    config_file = tmp_path / "slurm_config.json"
    config_file.write_text(json.dumps(SLURM_CONFIG))
    return {
        **make_environ(tmp_path, "not_used"),
        "FRACTAL_RUNNER_BACKEND": "slurm_ssh",
        "FRACTAL_SLURM_CONFIG_FILE": str(config_file),
        "FRACTAL_SLURM_WORKER_PYTHON": "/remote/venv/bin/python",
    }


def test_slurm_ssh_valid_configuration(ssh_environ):
    assert backend_of(ssh_environ) == "slurm_ssh"


def test_slurm_ssh_needs_the_worker_python(ssh_environ):
    del ssh_environ["FRACTAL_SLURM_WORKER_PYTHON"]
    assert startup_error(ssh_environ) == (
        "Must set FRACTAL_SLURM_WORKER_PYTHON when FRACTAL_RUNNER_BACKEND=slurm_ssh"
    )


def test_slurm_ssh_needs_the_config_file(ssh_environ, tmp_path):
    del ssh_environ["FRACTAL_SLURM_CONFIG_FILE"]
    assert startup_error(ssh_environ) == (
        "Must set FRACTAL_SLURM_CONFIG_FILE when FRACTAL_RUNNER_BACKEND=slurm_ssh"
    )
    ssh_environ["FRACTAL_SLURM_CONFIG_FILE"] = str(tmp_path / "missing.json")
    assert startup_error(ssh_environ) == (
        "FRACTAL_RUNNER_BACKEND=slurm_ssh but "
        f"FRACTAL_SLURM_CONFIG_FILE={tmp_path}/missing.json not found."
    )


@pytest.mark.parametrize(
    "content, problem",
    [
        ("[", "is not valid JSON: "),
        (json.dumps({**SLURM_CONFIG, "extra": 1}), "is not a valid SLURM configuration: extra: "),
        (
            json.dumps({**SLURM_CONFIG, "default_slurm_config": {"mem": "1.5G"}}),
            "is not a valid SLURM configuration: default_slurm_config.mem: invalid specification",
        ),
    ],
)
def test_slurm_ssh_validates_the_config_file(ssh_environ, content, problem):
    path = ssh_environ["FRACTAL_SLURM_CONFIG_FILE"]
    with open(path, "w") as config_file:
        config_file.write(content)
    assert startup_error(ssh_environ).startswith(f"FRACTAL_SLURM_CONFIG_FILE={path} {problem}")


def test_slurm_ssh_needs_ssh(ssh_environ, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert startup_error(ssh_environ) == (
        "FRACTAL_RUNNER_BACKEND=slurm_ssh but `ssh` command not found."
    )


@pytest.mark.parametrize("backend", ["local", "local_experimental"])
def test_local_config_file_must_exist_if_set(tmp_path, backend):
    environ = {**make_environ(tmp_path, "not_used"), "FRACTAL_RUNNER_BACKEND": backend}
    assert backend_of(environ) == backend
    config_file = tmp_path / "local.json"
    environ["FRACTAL_LOCAL_CONFIG_FILE"] = str(config_file)
    assert startup_error(environ) == (
        f"FRACTAL_RUNNER_BACKEND={backend} but FRACTAL_LOCAL_CONFIG_FILE={config_file} not found."
    )
    config_file.write_text('{"parallel_tasks_per_job": 2}')
    assert backend_of(environ) == backend


def test_only_local_experimental_can_stop_jobs(tmp_path):
    environ = make_environ(tmp_path, "not_used")
    for name, stops in [("local", False), ("local_experimental", True)]:
        app = create_app(environ={**environ, "FRACTAL_RUNNER_BACKEND": name})
        assert app.extensions["fractal"].backend.supports_stop is stops


def test_fractalctl_plugins_lists_the_three_distributions(tmp_path):
    result = run([str(BIN / "fractalctl"), "plugins"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if "fractal_runner_backends" in line] == [
        f"local (fractal-server-local-backend {__version__}): fractal_runner_backends",
        f"slurm (fractal-server-slurm-backend {__version__}): fractal_runner_backends",
        f"slurm_ssh (fractal-server-slurm-ssh-backend {__version__}): fractal_runner_backends",
    ]
    assert lines[-1] == "runner backends: local, local_experimental, slurm, slurm_ssh"
