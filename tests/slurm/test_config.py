"""FRACTAL_SLURM_CONFIG_FILE: what the schema accepts beyond the start-up checks
of tests/slurm_only, and how the GPU options override the defaults."""

import json
from copy import deepcopy

import pytest

from fractal_server.config.errors import FractalConfigurationError
from fractal_server_slurm_backend.config import load_slurm_config

CONFIG = {
    "default_slurm_config": {
        "partition": "main",
        "cpus_per_task": 1,
        "mem": "4G",
        "time": "01:00:00",
        "extra_lines": ["#SBATCH --qos=normal"],
    },
    "gpu_slurm_config": {"partition": "gpu", "mem": "8G", "extra_lines": ["#SBATCH --gres=gpu:1"]},
    "batching_config": {
        "target_cpus_per_job": 4,
        "max_cpus_per_job": 8,
        "target_mem_per_job": "8G",
        "max_mem_per_job": "16G",
        "target_num_jobs": 2,
        "max_num_jobs": 4,
    },
    "user_local_exports": {"CELLPOSE_LOCAL_MODELS_PATH": "models", "NAPARI_CONFIG": "napari.json"},
}


def problem(tmp_path, config) -> str:
    """The one-line reason the file is rejected."""
    path = tmp_path / "slurm.json"
    path.write_text(json.dumps(config))
    with pytest.raises(FractalConfigurationError) as error:
        load_slurm_config(path)
    message = str(error.value)
    assert "\n" not in message
    prefix = f"FRACTAL_SLURM_CONFIG_FILE={path} is not a valid SLURM configuration: "
    assert message.startswith(prefix)
    return message.removeprefix(prefix)


def changed(section, key, value) -> dict:
    config = deepcopy(CONFIG)
    config[section][key] = value
    return config


def test_the_example_of_the_spec_is_valid(tmp_path):
    path = tmp_path / "slurm.json"
    path.write_text(json.dumps(CONFIG))
    config = load_slurm_config(path)
    assert config.default_slurm_config.mem == 4000
    assert config.batching_config.max_mem_per_job == 16000
    assert config.user_local_exports == {
        "CELLPOSE_LOCAL_MODELS_PATH": "models",
        "NAPARI_CONFIG": "napari.json",
    }


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "many"])
@pytest.mark.parametrize(
    "section, key",
    [("default_slurm_config", "cpus_per_task"), ("batching_config", "max_num_jobs")],
)
def test_counts_are_positive_whole_numbers(tmp_path, section, key, value):
    assert problem(tmp_path, changed(section, key, value)).startswith(f"{section}.{key}: ")


@pytest.mark.parametrize("value", [0, "0", "0G"])
def test_memory_is_never_zero(tmp_path, value):
    assert problem(tmp_path, changed("default_slurm_config", "mem", value)) == (
        f"default_slurm_config.mem: invalid specification of memory requirements {value!r} "
        "(valid examples: 93, 71M, 93G, 71T)"
    )


@pytest.mark.parametrize(
    "key, value, where",
    [
        ("partition", "main\n#SBATCH --account=other", "partition"),
        ("time", "1:00\r", "time"),
        ("extra_lines", ["#SBATCH --qos=a", "module load x\nrm -rf ~"], "extra_lines.1"),
    ],
)
def test_script_values_are_single_lines(tmp_path, key, value, where):
    assert problem(tmp_path, changed("gpu_slurm_config", key, value)).startswith(
        f"gpu_slurm_config.{where}: must be a single line: "
    )


@pytest.mark.parametrize(
    "exports, message",
    [
        (
            {"1ABC": "x"},
            "user_local_exports.1ABC.[key]: '1ABC' is not a valid environment variable name",
        ),
        (
            {"A B": "x"},
            "user_local_exports.A B.[key]: 'A B' is not a valid environment variable name",
        ),
        (
            {"MODELS": "/srv/models"},
            "user_local_exports.MODELS: must be a path relative to the user's cache folder, "
            "not '/srv/models'",
        ),
        ({"MODELS": "a\nb"}, "user_local_exports.MODELS: must be a single line: 'a\\nb'"),
        (["MODELS"], "user_local_exports: must be an object of variable names and relative paths"),
    ],
)
def test_user_local_exports_are_variable_names_and_relative_paths(tmp_path, exports, message):
    config = {**CONFIG, "user_local_exports": exports}
    assert problem(tmp_path, config) == message


def test_every_problem_is_reported_on_one_line(tmp_path):
    config = changed("batching_config", "max_num_jobs", 0)
    config["default_slurm_config"]["gres"] = 3
    del config["batching_config"]["target_num_jobs"]
    assert problem(tmp_path, config) == (
        "default_slurm_config.gres: Input should be a valid string; "
        "batching_config.target_num_jobs: Field required; "
        "batching_config.max_num_jobs: Input should be greater than 0"
    )


def test_gpu_options_override_only_the_keys_they_set(tmp_path):
    path = tmp_path / "slurm.json"
    path.write_text(json.dumps(CONFIG))
    config = load_slurm_config(path)
    assert config.options_for(needs_gpu=False) == config.default_slurm_config
    gpu = config.options_for(needs_gpu=True)
    assert (gpu.partition, gpu.mem, gpu.extra_lines) == ("gpu", 8000, ["#SBATCH --gres=gpu:1"])
    assert (gpu.cpus_per_task, gpu.time) == (1, "01:00:00")


def test_without_gpu_section_gpu_tasks_get_the_defaults(tmp_path):
    path = tmp_path / "slurm.json"
    path.write_text(json.dumps({k: v for k, v in CONFIG.items() if k != "gpu_slurm_config"}))
    config = load_slurm_config(path)
    assert config.options_for(needs_gpu=True) == config.default_slurm_config


def test_the_file_is_read_again_at_every_load(tmp_path):
    path = tmp_path / "slurm.json"
    path.write_text(json.dumps(CONFIG))
    assert load_slurm_config(path).default_slurm_config.partition == "main"
    path.write_text(json.dumps(changed("default_slurm_config", "partition", "long")))
    assert load_slurm_config(path).default_slurm_config.partition == "long"
