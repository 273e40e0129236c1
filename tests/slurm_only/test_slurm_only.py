"""A server with only the slurm backend plugin installed (tox env `slurm-only`)."""
import json
from copy import deepcopy

import pytest
from servers import BIN, free_port, make_environ, run, startup_error

from fractal_server import __version__
from fractal_server.app import create_app
from fractal_server_slurm_backend.config import load_slurm_config

NO_LOCAL = (
    "FRACTAL_RUNNER_BACKEND=local but no installed plugin provides it "
    "(installed backends: slurm); install the plugin that provides it "
    "(the README's Deployment section lists the backend packages)."
)
VALID_CONFIG = {
    "default_slurm_config": {"partition": "main", "cpus_per_task": 1, "mem": "4G"},
    "gpu_slurm_config": {"partition": "gpu", "extra_lines": ["#SBATCH --gres=gpu:1"]},
    "batching_config": {
        "target_cpus_per_job": 4,
        "max_cpus_per_job": 8,
        "target_mem_per_job": "8G",
        "max_mem_per_job": 16000,
        "target_num_jobs": 2,
        "max_num_jobs": 4,
    },
    "user_local_exports": {"NAPARI_CONFIG": "napari_config.json"},
}


def fake_commands(folder, *names: str) -> str:
    """A folder of do-nothing executables, to be used as the whole PATH."""
    folder.mkdir()
    for name in names:
        (folder / name).write_text("#!/bin/sh\nexit 0\n")
        (folder / name).chmod(0o755)
    return str(folder)


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "slurm_config.json"
    path.write_text(json.dumps(VALID_CONFIG))
    return path


@pytest.fixture
def slurm_environ(tmp_path, config_file, monkeypatch):
    """A valid slurm configuration, with sbatch and squeue on PATH."""
    monkeypatch.setenv("PATH", fake_commands(tmp_path / "bin", "sbatch", "squeue"))
    return {
        **make_environ(tmp_path, "not_used"),
        "FRACTAL_RUNNER_BACKEND": "slurm",
        "FRACTAL_SLURM_CONFIG_FILE": str(config_file),
    }


def test_local_is_not_installed(tmp_path):
    assert startup_error(make_environ(tmp_path, "not_used")) == NO_LOCAL


def test_fractalctl_start_asks_for_the_local_backend_package(tmp_path):
    env = {**make_environ(tmp_path, "not_used"), "FRACTAL_RUNNER_BACKEND": "local"}
    result = run([str(BIN / "fractalctl"), "start", "--port", str(free_port())], env, tmp_path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"fractalctl: configuration error: {NO_LOCAL}\n"


def test_fractalctl_plugins_lists_only_slurm(tmp_path):
    result = run([str(BIN / "fractalctl"), "plugins"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if "fractal_runner_backends" in line] == [
        f"slurm (fractal-server-slurm-backend {__version__}): fractal_runner_backends"
    ]
    assert lines[-1] == "runner backends: slurm"


def test_valid_configuration(slurm_environ):
    assert create_app(environ=slurm_environ).extensions["fractal"].backend.name == "slurm"


def test_config_file_must_be_set(slurm_environ):
    del slurm_environ["FRACTAL_SLURM_CONFIG_FILE"]
    assert startup_error(slurm_environ) == (
        "Must set FRACTAL_SLURM_CONFIG_FILE when FRACTAL_RUNNER_BACKEND=slurm"
    )


def test_config_file_must_exist(slurm_environ, tmp_path):
    slurm_environ["FRACTAL_SLURM_CONFIG_FILE"] = str(tmp_path / "missing.json")
    assert startup_error(slurm_environ) == (
        f"FRACTAL_RUNNER_BACKEND=slurm but FRACTAL_SLURM_CONFIG_FILE={tmp_path}/missing.json "
        "not found."
    )


@pytest.mark.parametrize("content", ["{", "", "not json"])
def test_config_file_must_be_json(slurm_environ, config_file, content):
    config_file.write_text(content)
    assert startup_error(slurm_environ).startswith(
        f"FRACTAL_SLURM_CONFIG_FILE={config_file} is not valid JSON: "
    )


def test_config_file_must_be_readable_text(slurm_environ, config_file):
    config_file.write_bytes(b"\xff")
    assert startup_error(slurm_environ).startswith(
        f"FRACTAL_SLURM_CONFIG_FILE={config_file} cannot be read: "
    )
    slurm_environ["FRACTAL_SLURM_CONFIG_FILE"] = str(config_file.parent)
    assert startup_error(slurm_environ).startswith(
        f"FRACTAL_SLURM_CONFIG_FILE={config_file.parent} cannot be read: "
    )


def invalid_config_error(slurm_environ, config_file, config) -> str:
    config_file.write_text(json.dumps(config))
    prefix = f"FRACTAL_SLURM_CONFIG_FILE={config_file} is not a valid SLURM configuration: "
    message = startup_error(slurm_environ)
    assert message.startswith(prefix)
    return message.removeprefix(prefix)


@pytest.mark.parametrize(
    "section", [None, "default_slurm_config", "gpu_slurm_config", "batching_config"]
)
def test_unknown_keys_are_rejected_at_every_level(slurm_environ, config_file, section):
    config = deepcopy(VALID_CONFIG)
    (config[section] if section else config)["surprise"] = 1
    where = f"{section}.surprise" if section else "surprise"
    assert invalid_config_error(slurm_environ, config_file, config) == (
        f"{where}: Extra inputs are not permitted"
    )


@pytest.mark.parametrize("section", ["default_slurm_config", "batching_config"])
def test_required_sections(slurm_environ, config_file, section):
    config = {key: value for key, value in VALID_CONFIG.items() if key != section}
    assert invalid_config_error(slurm_environ, config_file, config) == f"{section}: Field required"


@pytest.mark.parametrize("config", [[], "text", None])
def test_config_must_be_an_object(slurm_environ, config_file, config):
    assert invalid_config_error(slurm_environ, config_file, config).startswith(
        "Input should be"
    )


@pytest.mark.parametrize("value", ["M100", "1.5G", "10K", "", "2 G", "93\n", "G", 1.5, True, [1]])
@pytest.mark.parametrize(
    "section, key",
    [
        ("default_slurm_config", "mem"),
        ("gpu_slurm_config", "mem"),
        ("batching_config", "target_mem_per_job"),
        ("batching_config", "max_mem_per_job"),
    ],
)
def test_bad_memory_values(slurm_environ, config_file, section, key, value):
    config = deepcopy(VALID_CONFIG)
    config[section][key] = value
    assert invalid_config_error(slurm_environ, config_file, config) == (
        f"{section}.{key}: invalid specification of memory requirements {value!r} "
        "(valid examples: 93, 71M, 93G, 71T)"
    )


@pytest.mark.parametrize(
    "value, megabytes", [(93, 93), ("93", 93), ("71M", 71), ("2G", 2000), ("1T", 1_000_000)]
)
def test_memory_values_in_megabytes(slurm_environ, config_file, value, megabytes):
    config = deepcopy(VALID_CONFIG)
    config["default_slurm_config"]["mem"] = value
    config["batching_config"]["max_mem_per_job"] = value
    config_file.write_text(json.dumps(config))
    create_app(environ=slurm_environ)
    loaded = load_slurm_config(config_file)
    assert loaded.default_slurm_config.mem == megabytes
    assert loaded.batching_config.max_mem_per_job == megabytes
    assert loaded.batching_config.target_mem_per_job == 8000


@pytest.mark.parametrize("missing, present", [("sbatch", "squeue"), ("squeue", "sbatch")])
def test_slurm_commands_must_be_on_path(slurm_environ, tmp_path, monkeypatch, missing, present):
    monkeypatch.setenv("PATH", fake_commands(tmp_path / "other_bin", present))
    assert startup_error(slurm_environ) == (
        f"FRACTAL_RUNNER_BACKEND=slurm but `{missing}` command not found."
    )
