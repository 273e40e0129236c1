"""Task meta, configuration file and job settings -> the options of a SLURM job (spec §5)."""

import pytest

from fractal_server_slurm_backend.config import SlurmConfigError, SlurmConfigFile
from fractal_server_slurm_backend.options import SlurmJobOptions, slurm_job_options

from .test_config import CONFIG

ACCOUNT_ADVICE = (
    "SLURM account must be set in the request body of the apply-workflow endpoint, "
    "or by modifying the user properties."
)


def options(
    meta=None, *, config=CONFIG, parallel=True, account=None, worker_init=None, name="Measure cells"
) -> SlurmJobOptions:
    return slurm_job_options(
        SlurmConfigFile.model_validate(config),
        meta,
        task_name=name,
        parallel=parallel,
        slurm_account=account,
        worker_init=worker_init,
    )


def test_defaults_of_the_configuration_file():
    result = options()
    assert result == SlurmJobOptions(
        partition="main",
        cpus_per_task=1,
        mem_per_call_mb=4000,
        job_name="Measure_cells",
        batching=SlurmConfigFile.model_validate(CONFIG).batching_config,
        time="01:00:00",
        extra_lines=("#SBATCH --qos=normal",),
        user_local_exports=(
            ("CELLPOSE_LOCAL_MODELS_PATH", "models"),
            ("NAPARI_CONFIG", "napari.json"),
        ),
    )


def test_meta_overrides_the_configuration():
    result = options(
        {
            "cpus_per_task": "4",
            "mem": "2G",
            "time": "00:10:00",
            "gres": "gpu:2",
            "gpus": "1",
            "constraint": "avx2",
            "extra_lines": ["module load cuda", "#SBATCH --qos=normal"],
            "tasks_per_job": 10,
            "parallel_tasks_per_job": 2,
            "some_other_key": "ignored",
        }
    )
    assert (result.cpus_per_task, result.mem_per_call_mb, result.time) == (4, 2000, "00:10:00")
    assert (result.gres, result.gpus, result.constraint) == ("gpu:2", "1", "avx2")
    assert result.extra_lines == ("#SBATCH --qos=normal", "module load cuda")
    assert (result.tasks_per_job, result.parallel_tasks_per_job) == (10, 2)


def test_null_meta_values_keep_the_configuration():
    result = options({"mem": None, "time": None, "cpus_per_task": None, "extra_lines": None})
    assert (result.mem_per_call_mb, result.time, result.cpus_per_task) == (4000, "01:00:00", 1)
    assert result.extra_lines == ("#SBATCH --qos=normal",)


def test_meta_cannot_set_partition_or_exports():
    result = options(
        {"partition": "vip", "user_local_exports": {"X": "y"}, "pre_submission_commands": ["x"]}
    )
    assert result.partition == "main"
    assert dict(result.user_local_exports) == CONFIG["user_local_exports"]
    assert result.pre_submission_commands == ()


def test_needs_gpu_uses_the_gpu_section_then_the_meta():
    result = options({"needs_gpu": True, "mem": 500})
    assert (result.partition, result.mem_per_call_mb) == ("gpu", 500)
    assert result.extra_lines == ("#SBATCH --gres=gpu:1",)
    assert options({"needs_gpu": False}).partition == "main"


def test_a_non_parallel_phase_ignores_the_batching_meta():
    result = options({"tasks_per_job": 10, "parallel_tasks_per_job": 2}, parallel=False)
    assert (result.tasks_per_job, result.parallel_tasks_per_job) == (None, None)


def test_the_account_comes_from_the_job_before_the_file():
    config = {
        **CONFIG,
        "default_slurm_config": {**CONFIG["default_slurm_config"], "account": "lab"},
    }
    assert options(config=config).account == "lab"
    assert options(config=config, account="project-7").account == "project-7"
    assert options(account="project-7").account == "project-7"
    assert options().account is None


def test_the_account_never_comes_from_the_meta():
    with pytest.raises(SlurmConfigError) as error:
        options({"account": "free-cpu"})
    assert str(error.value) == (
        f"Invalid account=free-cpu property in WorkflowTask meta attribute. {ACCOUNT_ADVICE}"
    )


@pytest.mark.parametrize(
    "line", ["#SBATCH --account=free-cpu", "#SBATCH -A free-cpu", "  #SBATCH  --account free"]
)
def test_the_account_never_comes_from_worker_init_or_meta_lines(line):
    with pytest.raises(SlurmConfigError) as error:
        options(worker_init=f"module load x\n{line}")
    assert str(error.value) == f"Invalid line in worker_init: {line!r}. {ACCOUNT_ADVICE}"
    with pytest.raises(SlurmConfigError) as error:
        options({"extra_lines": [line]})
    assert str(error.value) == (
        f"Invalid line in WorkflowTask meta extra_lines: {line!r}. {ACCOUNT_ADVICE}"
    )


def test_worker_init_is_kept_line_by_line_without_blank_lines():
    result = options(worker_init="source /opt/conda.sh\n\n  \nconda activate fractal\n")
    assert result.worker_init_lines == ("source /opt/conda.sh", "conda activate fractal")


@pytest.mark.parametrize(
    "meta, message",
    [
        (
            {"cpus_per_task": 0},
            "Invalid cpus_per_task=0 in WorkflowTask meta: not a positive integer.",
        ),
        (
            {"cpus_per_task": 1.5},
            "Invalid cpus_per_task=1.5 in WorkflowTask meta: not a positive integer.",
        ),
        (
            {"cpus_per_task": True},
            "Invalid cpus_per_task=True in WorkflowTask meta: not a positive integer.",
        ),
        (
            {"tasks_per_job": "x", "parallel_tasks_per_job": 1},
            "Invalid tasks_per_job='x' in WorkflowTask meta: not a positive integer.",
        ),
        (
            {"mem": "1.5G"},
            "Invalid mem in WorkflowTask meta: invalid specification of memory requirements "
            "'1.5G' (valid examples: 93, 71M, 93G, 71T)",
        ),
        ({"time": 60}, "Invalid time=60 in WorkflowTask meta: not a string."),
        (
            {"gres": "gpu:1\n#SBATCH --account=x"},
            "Invalid gres in WorkflowTask meta: must be a single line: "
            "'gpu:1\\n#SBATCH --account=x'",
        ),
        (
            {"extra_lines": "module load x"},
            "Invalid extra_lines='module load x' in WorkflowTask meta: not a list of strings.",
        ),
    ],
)
def test_invalid_meta_values(meta, message):
    with pytest.raises(SlurmConfigError) as error:
        options(meta)
    assert str(error.value) == message


def test_the_job_account_and_task_name_are_single_lines():
    with pytest.raises(
        SlurmConfigError, match="Invalid slurm_account in the job: must be a single line"
    ):
        options(account="a\nb")
    with pytest.raises(SlurmConfigError, match="Invalid name in the task: must be a single line"):
        options(name="a\nb")


@pytest.mark.parametrize(
    "key, name", [("partition", "partition"), ("cpus_per_task", "cpus_per_task"), ("mem", "mem")]
)
def test_partition_cpus_and_memory_must_be_known(key, name):
    defaults = {k: v for k, v in CONFIG["default_slurm_config"].items() if k != key}
    config = {**CONFIG, "default_slurm_config": defaults}
    with pytest.raises(SlurmConfigError) as error:
        options(config=config)
    assert str(error.value) == (
        f"SLURM option {name} is not set for task 'Measure cells': set it in "
        "default_slurm_config of FRACTAL_SLURM_CONFIG_FILE."
    )


def test_for_a_gpu_task_the_gpu_section_is_named_too():
    defaults = {k: v for k, v in CONFIG["default_slurm_config"].items() if k != "cpus_per_task"}
    with pytest.raises(SlurmConfigError) as error:
        options({"needs_gpu": True}, config={**CONFIG, "default_slurm_config": defaults})
    assert str(error.value) == (
        "SLURM option cpus_per_task is not set for task 'Measure cells': set it in "
        "default_slurm_config or gpu_slurm_config of FRACTAL_SLURM_CONFIG_FILE."
    )
