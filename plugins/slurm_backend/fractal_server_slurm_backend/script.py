"""The text of a SLURM submission script, and the names of its files.

A script holds one batch of calls of one task phase. Its preamble asks SLURM
for P calls' worth of resources (`--ntasks=P`); its body is one command, the
call wrapper. With P = 1 the wrapper runs the calls one after the other in
the batch step itself. With P > 1 it starts P lanes, each a one-task job
step (`srun`, the lane launcher) of one call's CPUs and memory, running its
share of the calls one after the other: a job step (an RPC to slurmctld, a
`slurmstepd`, its cgroups) costs tens to hundreds of milliseconds, paid
once per lane instead of once per call. A step per lane rather than one
step of P tasks, because SLURM limits memory per step (and node), not per
task: alone in its lane's step, a call gets one call's memory, no more.

Every value is quoted with `shlex.quote` (sbatch reads `#SBATCH` lines with
the same quoting rules) and none may contain a line break. Only the lines of
`extra_lines` and `worker_init` are copied as they are: they are meant to be
commands and options, and run as the user who wrote or was given them. The
shell is bash, which `source` and `conda activate` in `worker_init` need.
"""

import logging
import shlex
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Optional

from fractal_server_slurm_backend.config import SlurmConfigError, single_line
from fractal_server_slurm_backend.options import SlurmJobOptions

_logger = logging.getLogger(__name__)


def batch_prefix(order: int, batch: int) -> str:
    """The SLURM prefix of a batch of parallel calls, e.g. `2_batch_000000`.

    A job of one non-parallel call uses the call's own prefix (e.g. `0`)."""
    return f"{order}_batch_{batch:06d}"


def script_name(slurm_prefix: str) -> str:
    return f"{slurm_prefix}_slurm_submit.sbatch"


def slurm_log_names(slurm_prefix: str, job_id: str = "%j") -> tuple[str, str]:
    """(stdout, stderr) file names of a SLURM job; `%j` is SLURM's job-id pattern."""
    return f"{slurm_prefix}_slurm_{job_id}.out", f"{slurm_prefix}_slurm_{job_id}.err"


def _quoted(value) -> str:
    return shlex.quote(single_line(str(value)))


def export_lines(user_local_exports: Sequence[tuple[str, str]], base: str) -> list[str]:
    """`export NAME=<base>/<relative path>` for each entry of `user_local_exports`."""
    return [
        f"export {name}={_quoted(PurePosixPath(base) / relative)}"
        for name, relative in user_local_exports
    ]


def _sbatch(option: str, value) -> str:
    return f"#SBATCH --{option}={_quoted(value)}"


def _preamble(
    options: SlurmJobOptions,
    running: int,
    user_subfolder: str,
    slurm_prefix: str,
    user_job_dir: str,
) -> list[str]:
    lines = [
        _sbatch("partition", options.partition),
        _sbatch("ntasks", running),
        _sbatch("cpus-per-task", options.cpus_per_task),
        _sbatch("mem", f"{running * options.mem_per_call_mb}M"),
        _sbatch("job-name", options.job_name),
    ]
    for option in ("constraint", "gres", "gpus", "time", "account"):
        if getattr(options, option) is not None:
            lines.append(_sbatch(option, getattr(options, option)))
    out_name, err_name = slurm_log_names(slurm_prefix)
    lines += [
        _sbatch("err", PurePosixPath(user_subfolder) / err_name),
        _sbatch("out", PurePosixPath(user_subfolder) / out_name),
        f"#SBATCH -D {_quoted(user_job_dir)}",
    ]
    return lines


def step_launcher(options: SlurmJobOptions, running: int) -> Optional[list[str]]:
    """The call wrapper's `lane_launcher` for a job running `running` calls at a
    time: each lane is a one-task step of the allocation, with one call's CPUs
    and memory (`--exact`: no more); None, no lanes, when one call runs at a time."""
    if running == 1:
        return None
    return [
        "srun",
        "--ntasks=1",
        f"--cpus-per-task={options.cpus_per_task}",
        f"--mem={options.mem_per_call_mb}M",
        "--exact",
    ]


def submission_script(
    options: SlurmJobOptions,
    command: Sequence[str],
    *,
    n_calls: int,
    running: int,
    user_job_dir: str,
    user_subfolder: str,
    slurm_prefix: str,
    exports_base: str,
    logger: logging.Logger = _logger,
) -> str:
    """The script of one SLURM job whose `command` (an argument list, the call
    wrapper) runs `n_calls` calls, at most `running` at a time.

    Paths are those the job sees (user side): `user_job_dir` is its working
    directory, `user_subfolder` gets SLURM's stdout/stderr, `exports_base`
    is the folder `user_local_exports` paths are relative to.
    """
    if not command:
        raise ValueError("a SLURM job needs a command")
    if not 1 <= running <= n_calls:
        raise ValueError(f"cannot run {running} of {n_calls} calls at a time")
    if options.time is not None and running > 1:
        logger.warning(
            f"SLURM job {slurm_prefix}: time={options.time} is for the whole job of "
            f"{n_calls} calls, {running} at a time; it is not scaled."
        )
    free_lines = [single_line(line) for line in options.extra_lines + options.worker_init_lines]
    repeated = sorted({line for line in free_lines if free_lines.count(line) > 1})
    if repeated:
        raise SlurmConfigError(f"Lines repeated in extra_lines and worker_init: {repeated}")
    sbatch_lines = [line for line in free_lines if line.startswith("#SBATCH")]
    other_lines = [line for line in free_lines if not line.startswith("#SBATCH")]
    lines = [
        "#!/bin/bash",
        *_preamble(options, running, user_subfolder, slurm_prefix, user_job_dir),
        *sbatch_lines,
        *other_lines,
        *export_lines(options.user_local_exports, exports_base),
        " ".join(_quoted(arg) for arg in command),
    ]
    return "\n".join(lines) + "\n"
