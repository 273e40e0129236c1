"""Job execution overhead: a 4N-task-process workflow against the physical limit, over HTTP only.

    python benchmarks/runner.py --base-url http://127.0.0.1:8000 \\
        --user admin@fractal.xy --password 1234 --sizes 10,100,1000

For each N it runs, as one job on a new dataset, the workflow

    0 create_images      non-parallel   1 process   makes N images (is_3D)
    1 mip (compound)     init + N       N+1         adds N `_mip` images (not is_3D)
    2 label (parallel)   N              N           updates the N `_mip` images
    3 derive (compound)  init + N       N+1         adds N `_mip_b` images (derived)
    4 measure (parallel) N              N           updates the N `_mip_b` images

with the mock task scripts of `tests/mock_tasks/fractal_tasks_mock`, and
measures the time from submission to `done`. The server must be able to run
those scripts with this Python (the task commands are `<this python>
<script>`), i.e. run on this machine; `--task-python` and `--tasks-dir` name
an interpreter and a copy of the scripts that the account running the tasks
can use (a SLURM user).

The physical limit is the same task processes (same scripts, same arguments
files, taken from the job's folder through the download endpoint) run
directly, phase after phase as the runner must, through a
`concurrent.futures` process pool as wide as the machine (`os.cpu_count()`).
The ratio job time / limit is the runner's overhead; 1.0 is perfect.

Each measure is taken `--repeat` times, job and limit interleaved, and the
best one counts (the machine may be shared). The limit is also measured with
the width of the local runner's pool (`--widths`): on a machine whose tasks
wait (disk, other tenants) a pool only as wide as the cores is no limit.
Prints a Markdown table; `--json FILE` also writes the raw numbers. The
projects are left on the server (`benchmark-runner-<timestamp>`).
"""
import argparse
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Optional

from api_session import Api

MOCK_TASKS = Path(__file__).resolve().parents[1] / "tests" / "mock_tasks" / "fractal_tasks_mock"


def process_cpu(pid: Optional[int]) -> Optional[tuple[float, float]]:
    """CPU seconds of a process itself, and of its children that it waited for (from /proc)."""
    if pid is None:
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(value) / ticks for value in fields[11:15])
    return utime + stime, cutime + cstime


def command(python: str, tasks_dir: Path, script: str) -> str:
    return f"{python} {tasks_dir / script}"


def workflow_spec(python: str, tasks_dir: Path, tag: str) -> list[dict]:
    """The five workflow tasks: task body, wftask body."""
    def cmd(script):
        return command(python, tasks_dir, script)

    return [
        {
            "task": {"name": f"create_images-{tag}", "command_non_parallel": cmd("create_images.py"),
                     "output_types": {"is_3D": True}},
            "wftask": {},  # num_images is set per dataset size: see run_size
        },
        {
            "task": {"name": f"mip-{tag}", "command_non_parallel": cmd("generic_compound_init.py"),
                     "command_parallel": cmd("generic_compound_compute.py"),
                     "input_types": {"is_3D": True}, "output_types": {"is_3D": False}},
            "wftask": {"args_parallel": {"suffix": "_mip"}},
        },
        {
            "task": {"name": f"label-{tag}", "command_parallel": cmd("generic_parallel.py")},
            "wftask": {"args_parallel": {"attributes": {"stage": "labelled"}}},
        },
        {
            "task": {"name": f"derive-{tag}", "command_non_parallel": cmd("generic_compound_init.py"),
                     "command_parallel": cmd("generic_compound_compute.py"), "output_types": {"derived": True}},
            "wftask": {"args_parallel": {"suffix": "_b"}},
        },
        {
            "task": {"name": f"measure-{tag}", "command_parallel": cmd("generic_parallel.py")},
            "wftask": {"args_parallel": {"attributes": {"stage": "measured"}}},
        },
    ]


SSH_COMMAND_LINE = re.compile(r"ssh \S+: (\S+) \(sent (\d+) B, received (\d+) B\)$")
"""What the slurm_ssh backend logs (DEBUG) per SSH command: target, command, stdin and stdout bytes."""


class SlurmCounts:
    """The SLURM jobs a Fractal job submitted (sbatch), from slurmctld's job-completion
    log; the squeue runs of the server during the job, from a log the server's
    `squeue` (a wrapper first on its PATH) appends one line to per run; and, for
    slurm_ssh, the SSH commands (squeue included) and their bytes, from the lines
    the server's log gained during the job."""

    def __init__(self, jobcomp_log: Path, squeue_log: Optional[Path] = None, ssh_log: Optional[Path] = None):
        self.jobcomp_log = jobcomp_log
        self.squeue_log = squeue_log
        self.ssh_log = ssh_log

    def mark(self) -> tuple[int, int]:
        """Where the logs are now: squeue runs so far, size of the SSH log."""
        squeue = self.squeue_log
        runs = len(squeue.read_text().splitlines()) if squeue and squeue.exists() else 0
        return runs, self.ssh_log.stat().st_size if self.ssh_log else 0

    def counts_since(self, mark: tuple[int, int], workdir: str) -> dict:
        states = self.slurm_jobs(workdir)
        result = {"sbatch": len(states), "slurm_states": sorted(set(states))}
        if self.squeue_log:
            result["squeue"] = self.mark()[0] - mark[0]
        if self.ssh_log:
            with open(self.ssh_log, "rb") as log:
                log.seek(mark[1])
                lines = log.read().decode(errors="replace").splitlines()
            commands = [match.groups() for match in map(SSH_COMMAND_LINE.search, lines) if match]
            result["ssh_round_trips"] = len(commands)
            result["ssh_bytes"] = sum(int(sent) + int(received) for _, sent, received in commands)
            result["squeue"] = sum(1 for name, _, _ in commands if name == "squeue")
        return result

    def slurm_jobs(self, workdir: str) -> list[str]:
        """States of the finished SLURM jobs that ran in `workdir` (a Fractal job's user-side folder)."""
        states = []
        for line in self.jobcomp_log.read_text().splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            if fields.get("WorkDir") == workdir:
                states.append(fields.get("JobState", "?"))
        return states


class Benchmark:
    def __init__(
        self,
        api: Api,
        python: str,
        tasks_dir: Path,
        zarr_base: Path,
        poll: float,
        server_pid: Optional[int],
        slurm: Optional[SlurmCounts] = None,
    ):
        self.api = api
        self.slurm = slurm
        self.zarr_base = zarr_base
        self.poll = poll
        self.server_pid = server_pid
        tag = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.tag = tag
        self.project_id = api.post("/api/v2/project/", {"name": f"benchmark-runner-{tag}"})["id"]
        self.spec = workflow_spec(python, tasks_dir, tag)
        self.task_ids = [api.post("/api/v2/task/", item["task"])["id"] for item in self.spec]
        self.runs = 0

    @property
    def project(self) -> str:
        return f"/api/v2/project/{self.project_id}"

    def make_workflow(self, size: int) -> int:
        self.runs += 1
        workflow_id = self.api.post(f"{self.project}/workflow/", {"name": f"runner-{size}-{self.runs}"})["id"]
        for index, (item, task_id) in enumerate(zip(self.spec, self.task_ids)):
            body = dict(item["wftask"])
            if index == 0:
                body["args_non_parallel"] = {"num_images": size}
            self.api.post(f"{self.project}/workflow/{workflow_id}/wftask/?task_id={task_id}", body)
        return workflow_id

    def run_size(self, size: int) -> dict:
        workflow_id = self.make_workflow(size)
        zarr_dir = self.zarr_base / f"{self.tag}-n{size}-{self.runs}"
        dataset_id = self.api.post(
            f"{self.project}/dataset/", {"name": f"n{size}-{self.runs}", "zarr_dir": str(zarr_dir)}
        )["id"]
        cpu_before = process_cpu(self.server_pid)
        mark = self.slurm.mark() if self.slurm else None
        started = time.perf_counter()
        job = self.api.post(
            f"{self.project}/job/submit/?workflow_id={workflow_id}&dataset_id={dataset_id}", {}, expect=202
        )
        while job["status"] == "submitted":
            # At most 0.5% of the elapsed time late, without loading the server with requests.
            time.sleep(min(max(self.poll, (time.perf_counter() - started) / 200), 1.0))
            job = self.api.call("GET", f"{self.project}/job/{job['id']}/", params={"log": False}).json()
        observed = time.perf_counter() - started
        cpu_after = process_cpu(self.server_pid)
        if job["status"] != "done":
            raise RuntimeError(f"job {job['id']} ended {job['status']}:\n{job['log']}")
        server_side = (
            datetime.fromisoformat(job["end_timestamp"]) - datetime.fromisoformat(job["start_timestamp"])
        ).total_seconds()
        result = {"job": job, "observed_s": observed, "server_s": server_side, "zarr_dir": str(zarr_dir)}
        if cpu_before and cpu_after:
            result["server_cpu_s"] = cpu_after[0] - cpu_before[0]
            result["tasks_cpu_s"] = cpu_after[1] - cpu_before[1]
        if self.slurm:
            result.update(self.slurm.counts_since(mark, job["working_dir_user"]))
        return result

    def job_folder(self, job: dict, target: Path) -> Path:
        """The job's folder, extracted from the download endpoint (retried while it is being archived)."""
        for attempt in range(10):
            try:
                response = self.api.call("GET", f"{self.project}/job/{job['id']}/download/")
                with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
                    archive.extractall(target)
                return target
            except (RuntimeError, zipfile.BadZipFile):
                if attempt == 9:
                    raise
                time.sleep(1)
        raise AssertionError("unreachable")


def phases(folder: Path, spec: list[dict]) -> list[list[tuple[str, Path]]]:
    """Per workflow task, its calls as (command, arguments file): the init (or only) call, then the parallel ones.

    An init call and its parallel calls are two phases: the runner cannot
    start the latter before the former ended.
    """
    result = []
    for order, item in enumerate(spec):
        [subfolder] = folder.glob(f"{order}_*/")
        non_parallel = subfolder / f"{order}.args.json"
        if non_parallel.exists():
            result.append([(item["task"]["command_non_parallel"], non_parallel)])
        parallel = sorted(subfolder.glob(f"{order}_par_*.args.json"))
        if parallel:
            result.append([(item["task"]["command_parallel"], path) for path in parallel])
    return result


def run_call(call: tuple[str, str]) -> int:
    """One task process, started as the local runner starts it (its output and log go elsewhere).

    In a session of its own, as the runner does: where the kernel groups
    processes by session for scheduling (autogroup), that decides how much
    of a shared machine the task gets.
    """
    task_command, args_file = call
    out_file = args_file.replace(".args.json", ".replay.metadiff.json")
    with open(args_file.replace(".args.json", ".replay.log"), "wb") as log:
        return subprocess.run(
            [*shlex.split(task_command), "--args-json", args_file, "--out-json", out_file],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ).returncode


def physical_limit(call_phases: list[list[tuple[str, Path]]], width: int) -> tuple[float, float]:
    """Run the phases one after the other, each through a pool of `width` processes.

    Answers the seconds it took and the CPU seconds of the task processes
    (and of the pool's workers, which do little besides waiting for them).
    """
    children_before = os.times()
    with ProcessPoolExecutor(max_workers=width) as pool:
        list(pool.map(run_call, [("true", "/dev/null")] * width))  # start the workers first
        started = time.perf_counter()
        for calls in call_phases:
            codes = list(pool.map(run_call, [(task_command, str(path)) for task_command, path in calls]))
            if any(codes):
                raise RuntimeError(f"replayed task failed: exit codes {sorted(set(codes))}")
        elapsed = time.perf_counter() - started
    children_after = os.times()
    cpu = (children_after.children_user - children_before.children_user) + (
        children_after.children_system - children_before.children_system
    )
    return elapsed, cpu


def runner_pool_width() -> int:
    """The width of the local runner's thread pool (`ThreadPoolExecutor()`'s default)."""
    return min(32, (os.cpu_count() or 1) + 4)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="admin@fractal.xy")
    parser.add_argument("--password", default="1234")
    parser.add_argument("--sizes", default="10,100,1000", help="comma-separated values of N")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measure; the best one counts")
    parser.add_argument("--tasks-dir", type=Path, default=MOCK_TASKS, help="the mock task scripts")
    parser.add_argument(
        "--task-python", default=sys.executable, help="interpreter (and options) of the task commands; default: this one"
    )
    parser.add_argument(
        "--squeue-log",
        type=Path,
        default=None,
        help="slurm backend: a file the server's squeue appends a line to per run; "
        "then also count squeue runs and (from --jobcomp-log) SLURM jobs per Fractal job",
    )
    parser.add_argument(
        "--ssh-log",
        type=Path,
        default=None,
        help="slurm_ssh backend: the server's log, at DEBUG level; then also count the SSH commands "
        "(squeue among them) and their bytes, and (from --jobcomp-log) SLURM jobs per Fractal job",
    )
    parser.add_argument("--jobcomp-log", type=Path, default=Path("/var/log/slurm/jobcomp.log"))
    parser.add_argument(
        "--zarr-base", type=Path, default=None, help="where the datasets' zarr_dir go (default: a temporary folder)"
    )
    parser.add_argument(
        "--widths",
        default=f"{os.cpu_count()},{runner_pool_width()}",
        help="widths of the physical-limit pool (default: os.cpu_count(), then the local runner's pool width)",
    )
    parser.add_argument("--poll", type=float, default=0.1, help="least seconds between two job status requests")
    parser.add_argument(
        "--server-pid", type=int, default=None, help="the server process (same machine): also measure its CPU time"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the raw numbers here")
    args = parser.parse_args(argv)

    sizes = [int(size) for size in args.sizes.split(",")]
    widths = [int(width) for width in args.widths.split(",")]
    scratch = Path(tempfile.mkdtemp(prefix="fractal-runner-benchmark-"))
    zarr_base = (args.zarr_base or scratch / "zarr").resolve()
    zarr_base.mkdir(parents=True, exist_ok=True)
    api = Api(args.base_url, args.user, args.password)
    slurm = SlurmCounts(args.jobcomp_log, args.squeue_log, args.ssh_log) if args.squeue_log or args.ssh_log else None
    benchmark = Benchmark(api, args.task_python, args.tasks_dir.resolve(), zarr_base, args.poll, args.server_pid, slurm)

    def log(message: str) -> None:
        print(f"{datetime.now():%H:%M:%S} load {os.getloadavg()[0]:.1f} | {message}", file=sys.stderr, flush=True)

    rows = []
    for size in sizes:
        jobs: list[dict] = []
        limits: dict[int, list[tuple[float, float]]] = {width: [] for width in widths}
        call_phases = None
        for run in range(args.repeat):
            # Interleaved, so that a change of the machine's load hits both sides.
            result = benchmark.run_size(size)
            jobs.append(result)
            cpu = ""
            if "server_cpu_s" in result:
                cpu = f", server CPU {result['server_cpu_s']:.1f}s, task CPU {result['tasks_cpu_s']:.1f}s"
            if "sbatch" in result:
                cpu += f", {result['sbatch']} sbatch ({'/'.join(result['slurm_states'])}), {result['squeue']} squeue"
            if "ssh_round_trips" in result:
                cpu += f", {result['ssh_round_trips']} SSH round trips, {result['ssh_bytes']} B"
            log(f"N={size} run {run}: job {result['observed_s']:.2f}s{cpu}")
            if call_phases is None:
                folder = benchmark.job_folder(result["job"], scratch / f"job-n{size}")
                call_phases = phases(folder, benchmark.spec)
                replayed_zarr_dir = Path(result["zarr_dir"])
            for width in widths:
                # The replay makes the same folders as the job did, not fewer.
                shutil.rmtree(replayed_zarr_dir, ignore_errors=True)
                limits[width].append(physical_limit(call_phases, width))
                elapsed, cpu_s = limits[width][-1]
                log(f"N={size} run {run}: limit with {width} processes {elapsed:.2f}s, task CPU {cpu_s:.1f}s")
        processes = sum(len(calls) for calls in call_phases)
        best_job = min(result["observed_s"] for result in jobs)
        row = {
            "N": size,
            "task_processes": processes,
            "job_s": round(best_job, 2),
            "jobs_s": [round(result["observed_s"], 2) for result in jobs],
            "limits_s": {str(width): [round(elapsed, 2) for elapsed, _ in values] for width, values in limits.items()},
            "ratios": {str(width): round(best_job / min(e for e, _ in values), 3) for width, values in limits.items()},
        }
        if slurm:
            row["sbatch"] = [result["sbatch"] for result in jobs]
            row["squeue"] = [result["squeue"] for result in jobs]
        if args.ssh_log:
            row["ssh_round_trips"] = [result["ssh_round_trips"] for result in jobs]
            row["ssh_bytes"] = [result["ssh_bytes"] for result in jobs]
        if args.server_pid:
            # The server's own CPU time, against that of the task processes of the same job.
            best = min(jobs, key=lambda result: result["server_cpu_s"])
            row["server_cpu_s"] = round(best["server_cpu_s"], 2)
            row["server_cpu_ms_per_process"] = round(1000 * best["server_cpu_s"] / processes, 2)
            row["tasks_cpu_s"] = round(best["tasks_cpu_s"], 2)
            # None where the tasks are not the server's children (slurm_ssh: they run through sshd).
            tasks_cpu = best["tasks_cpu_s"]
            row["server_cpu_share"] = round(best["server_cpu_s"] / tasks_cpu, 3) if tasks_cpu else None
            row["replay_tasks_cpu_s"] = {
                str(width): [round(cpu_s, 2) for _, cpu_s in values] for width, values in limits.items()
            }
        rows.append(row)
        log(json.dumps(row))

    header = " | ".join(f"limit, {width} processes (s) | ratio" for width in widths)
    cpu_header = " | server CPU per task process (ms) | server CPU / task CPU" if args.server_pid else ""
    slurm_header = " | sbatch per job | squeue per job" if slurm else ""
    ssh_header = " | SSH round trips per job | bytes moved per job" if args.ssh_log else ""
    print(f"| N | task processes | submission to done (s) | {header}{cpu_header}{slurm_header}{ssh_header} |")
    extra = "".join(" | ---: | ---:" for header in (cpu_header, slurm_header, ssh_header) if header)
    print("| ---: | ---: | ---: | " + " | ".join("---: | ---:" for _ in widths) + extra + " |")
    for row in rows:
        cells = " | ".join(
            f"{min(row['limits_s'][str(width)]):.2f} | {row['ratios'][str(width)]:.2f}" for width in widths
        )
        if args.server_pid:
            share = row["server_cpu_share"]
            cells += f" | {row['server_cpu_ms_per_process']:.1f} | {'n/a' if share is None else f'{100 * share:.1f}%'}"
        if slurm:
            cells += f" | {'/'.join(map(str, row['sbatch']))} | {'/'.join(map(str, row['squeue']))}"
        if args.ssh_log:
            cells += f" | {'/'.join(map(str, row['ssh_round_trips']))} | {'/'.join(map(str, row['ssh_bytes']))}"
        print(f"| {row['N']} | {row['task_processes']} | {row['job_s']:.2f} | {cells} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
