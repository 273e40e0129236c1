"""Submission scripts (spec §5.1): their text, and one run on the local cluster."""

import json
import shutil

import pytest

from fractal_server.runner.calls import WRAPPER_SCRIPT
from fractal_server_slurm_backend.config import SlurmConfigError, SlurmConfigFile
from fractal_server_slurm_backend.options import slurm_job_options
from fractal_server_slurm_backend.script import (
    batch_prefix,
    export_lines,
    script_name,
    slurm_log_names,
    step_launcher,
    submission_script,
)

from .cluster import SERVICE_ACCOUNT, TASK_USERS, as_task_user, wait_for_final_state
from .test_config import CONFIG

CACHE = "/home/ana/.fractal_cache"
JOB_DIR = f"{CACHE}/proj_v1_job_0000007"
SUBFOLDER = f"{JOB_DIR}/1_measure_cells"


def options(meta=None, worker_init=None, account=None, config=CONFIG):
    return slurm_job_options(
        SlurmConfigFile.model_validate(config),
        meta,
        task_name="Measure cells",
        parallel=True,
        slurm_account=account,
        worker_init=worker_init,
    )


WRAPPER = ["/venv/bin/python", "/jobs/job_7/call_wrapper.py", "/jobs/job_7/1_measure_cells/1_batch_000000.phase.json"]


def script(job_options, n_calls=1, running=1, command=WRAPPER, prefix="1_batch_000000", **paths):
    where = {"user_job_dir": JOB_DIR, "user_subfolder": SUBFOLDER, "exports_base": CACHE}
    return submission_script(
        job_options,
        command,
        n_calls=n_calls,
        running=running,
        slurm_prefix=prefix,
        **{**where, **paths},
    )


def test_file_names():
    assert batch_prefix(2, 0) == "2_batch_000000"
    assert batch_prefix(12, 1234) == "12_batch_001234"
    assert script_name("0") == "0_slurm_submit.sbatch"
    assert slurm_log_names("0") == ("0_slurm_%j.out", "0_slurm_%j.err")
    assert slurm_log_names("2_batch_000001", "1234") == (
        "2_batch_000001_slurm_1234.out",
        "2_batch_000001_slurm_1234.err",
    )


def test_a_batch_of_three_calls_two_at_a_time():
    text = script(
        options(
            {"mem": "1G"},
            worker_init="source /opt/conda.sh\nconda activate fractal",
            account="lab-7",
        ),
        n_calls=3,
        running=2,
    )
    assert text == "\n".join(
        [
            "#!/bin/bash",
            "#SBATCH --partition=main",
            "#SBATCH --ntasks=2",
            "#SBATCH --cpus-per-task=1",
            "#SBATCH --mem=2000M",
            "#SBATCH --job-name=Measure_cells",
            "#SBATCH --time=01:00:00",
            "#SBATCH --account=lab-7",
            f"#SBATCH --err={SUBFOLDER}/1_batch_000000_slurm_%j.err",
            f"#SBATCH --out={SUBFOLDER}/1_batch_000000_slurm_%j.out",
            f"#SBATCH -D {JOB_DIR}",
            "#SBATCH --qos=normal",
            "source /opt/conda.sh",
            "conda activate fractal",
            f"export CELLPOSE_LOCAL_MODELS_PATH={CACHE}/models",
            f"export NAPARI_CONFIG={CACHE}/napari.json",
            " ".join(WRAPPER),
            "",
        ]
    )


def test_resources_are_for_the_calls_that_run_at_once():
    text = script(options({"cpus_per_task": 2, "mem": 300}), n_calls=5, running=2)
    assert "#SBATCH --ntasks=2\n#SBATCH --cpus-per-task=2\n#SBATCH --mem=600M\n" in text


def test_optional_options_appear_only_when_set():
    config = {
        **CONFIG,
        "default_slurm_config": {"partition": "main", "cpus_per_task": 1, "mem": 100},
    }
    config.pop("user_local_exports")
    text = script(options(config=config))
    for option in ("constraint", "gres", "gpus", "time", "account"):
        assert f"--{option}" not in text
    assert "export" not in text
    text = script(options({"gres": "gpu:1", "gpus": "2", "constraint": "a100"}, config=config))
    assert "#SBATCH --constraint=a100\n#SBATCH --gres=gpu:1\n#SBATCH --gpus=2\n" in text


def test_sbatch_lines_of_worker_init_go_to_the_preamble():
    text = script(options(worker_init="module load a\n#SBATCH --qos=high"))
    lines = text.splitlines()
    assert lines.index("#SBATCH --qos=high") < lines.index("module load a")
    assert all(line.startswith(("#!", "#SBATCH")) for line in lines[: lines.index("module load a")])


def test_everything_but_free_lines_is_quoted():
    text = script(
        options(meta={"constraint": "a&b"}),
        command=["python", "my wrapper.py", "$(rm -rf ~)", "it's"],
        user_job_dir="/data/my project/job",
        user_subfolder="/data/my project/job/0_x",
        exports_base="/data/my project",
    )
    assert "#SBATCH --constraint='a&b'\n" in text
    assert "#SBATCH -D '/data/my project/job'\n" in text
    assert "#SBATCH --err='/data/my project/job/0_x/1_batch_000000_slurm_%j.err'\n" in text
    assert "export NAPARI_CONFIG='/data/my project/napari.json'\n" in text
    assert text.endswith("\npython 'my wrapper.py' '$(rm -rf ~)' 'it'\"'\"'s'\n")


@pytest.mark.parametrize(
    "change",
    [
        {"command": ["echo", "a\nb"]},
        {"user_job_dir": "/a\n/b"},
        {"exports_base": "/a\rb"},
    ],
)
def test_line_breaks_are_rejected(change):
    with pytest.raises(ValueError, match="must be a single line"):
        script(options(), **change)


def test_repeated_free_lines_are_rejected():
    with pytest.raises(SlurmConfigError) as error:
        script(options(worker_init="#SBATCH --qos=normal"))
    assert (
        str(error.value)
        == "Lines repeated in extra_lines and worker_init: ['#SBATCH --qos=normal']"
    )


@pytest.mark.parametrize("command, n_calls, running", [([], 1, 1), (WRAPPER, 1, 0), (WRAPPER, 1, 2)])
def test_a_job_needs_a_command_and_room_for_its_calls(command, n_calls, running):
    with pytest.raises(ValueError):
        script(options(), n_calls, running, command)


def test_time_is_not_scaled_with_a_warning(caplog):
    script(options(), n_calls=3, running=3)
    assert caplog.messages == [
        "SLURM job 1_batch_000000: time=01:00:00 is for the whole job of 3 calls, "
        "3 at a time; it is not scaled."
    ]


def test_export_lines():
    assert export_lines((("A", "x/y"), ("B", "z")), "/base") == [
        "export A=/base/x/y",
        "export B=/base/z",
    ]


@pytest.mark.usefixtures("slurm_cluster")
def test_a_script_runs_its_calls_in_p_lanes_of_one_step_each(shared_dirs):
    """Five calls, two lanes, through the call wrapper, as the task user:
    each call records how many calls were running when it started and its
    job step; the calls of a lane share its step, one after the other. Call
    2 exceeds its lane's memory: its status says so, and its lane goes on."""
    user = TASK_USERS[0]
    workdir = shared_dirs.users[user]
    probe = 'touch "running.$0"; ls running.* | wc -l > "seen.$0"; echo "step $SLURM_STEP_ID"; sleep 0.5; rm "running.$0"'
    hungry = "b = bytearray(300 * 1000 * 1000)"
    config = {
        **CONFIG,
        "default_slurm_config": {"partition": "main", "cpus_per_task": 1, "mem": 50},
    }
    job_options = options(config=config)
    wrapper = shared_dirs.server / "call_wrapper.py"
    shutil.copyfile(WRAPPER_SCRIPT, wrapper)
    argvs = [["sh", "-c", probe, str(index)] for index in range(5)]
    argvs[2] = ["python3", "-c", hungry]
    phase = {
        "parallel": 2,
        "lane_launcher": step_launcher(job_options, 2),
        "calls": [
            {"argv": argv, "log": f"{workdir}/{index}.log", "status": f"{workdir}/{index}.status"}
            for index, argv in enumerate(argvs)
        ],
    }
    phase_file = shared_dirs.server / "0.phase.json"
    phase_file.write_text(json.dumps(phase))
    text = script(
        job_options,
        n_calls=5,
        running=2,
        command=["python3", "-S", str(wrapper), str(phase_file)],
        prefix="0",
        user_job_dir=str(workdir),
        user_subfolder=str(workdir),
        exports_base=str(workdir),
    )
    path = shared_dirs.server / script_name("0")
    path.write_text(text)
    for written in (wrapper, phase_file, path):
        written.chmod(0o644)
        shutil.chown(written, user=SERVICE_ACCOUNT, group=SERVICE_ACCOUNT)
    result = as_task_user(user, ["sbatch", "--parsable", str(path)])
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert wait_for_final_state(job_id) == "COMPLETED"
    out_name, err_name = slurm_log_names("0", job_id)
    assert (workdir / out_name).exists()
    seen = [int((workdir / f"seen.{index}").read_text()) for index in (0, 1, 3, 4)]
    assert 1 <= max(seen) <= 2
    steps = {index: (workdir / f"{index}.log").read_text() for index in (0, 1, 3, 4)}
    assert steps[0] == steps[4] != steps[1] == steps[3], steps
    assert set(steps.values()) == {"step 0\n", "step 1\n"}
    statuses = [json.loads((workdir / f"{index}.status").read_text()) for index in range(5)]
    assert statuses[2] == {"returncode": -9, "oom_killed": True}
    assert statuses[:2] + statuses[3:] == [{"returncode": 0}] * 4


def test_the_step_launcher_starts_lanes_only_for_calls_at_once():
    job_options = options({"cpus_per_task": 2, "mem": "3G"})
    assert step_launcher(job_options, 1) is None
    assert step_launcher(job_options, 3) == [
        "srun",
        "--ntasks=1",
        "--cpus-per-task=2",
        "--mem=3000M",
        "--exact",
    ]
