"""End to end: a job built, run and inspected with the real `fractal` client.

`fractalctl start` serves a throw-away PostgreSQL database set up by
`fractalctl set-db`; the command-line client of fractal-client 2.5 creates
the project, dataset, tasks and workflow as the default admin, submits the
job, polls it and downloads its folder, exactly as a user would.
"""
import json
import os
import subprocess
import time

import psycopg
import pytest
from conftest import POSTGRES, make_environ
from psycopg import sql
from runner.conftest import mock_command
from servers import BIN, ServerProcess, free_port, process_env, run

FRACTAL = BIN / "fractal"


def _postgres(database: str = "postgres"):
    return psycopg.connect(dbname=database, autocommit=True, **POSTGRES)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`fractalctl start` (local backend) on a database prepared by `fractalctl set-db`."""
    name = f"fractal_client_jobs_{os.getpid()}"
    with _postgres() as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = tmp_path_factory.mktemp("fractal-client-jobs")
    env = {"HOME": str(base), **make_environ(base, name), "FRACTAL_RUNNER_BACKEND": "local"}
    process = None
    try:
        set_db = run([str(BIN / "fractalctl"), "set-db"], env, base, timeout=120)
        assert set_db.returncode == 0, set_db.stdout + set_db.stderr
        port = free_port()
        process = ServerProcess(
            [str(BIN / "fractalctl"), "start", "--port", str(port)], env, port, base, base / "server.log"
        )
        process.wait_alive(timeout=60)
        yield process
    finally:
        if process is not None:
            process.kill()
        with _postgres() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def fractal(server, tmp_path):
    """Run `fractal ARGS...` as the default admin; answer its standard output (exit code 0 checked)."""
    env = {
        "HOME": str(tmp_path),
        "FRACTAL_SERVER": server.url,
        "FRACTAL_USER": "admin@fractal.xy",
        "FRACTAL_PASSWORD": "1234",
        "FRACTAL_CACHE_PATH": str(tmp_path / "cache"),
    }

    def fractal_command(*args: str) -> str:
        done = subprocess.run(
            [str(FRACTAL), *args], env=process_env(env), cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"fractal {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout.strip()

    return fractal_command


def write_json(path, content) -> str:
    path.write_text(json.dumps(content))
    return str(path)


def test_submit_poll_and_download_a_job_with_the_fractal_client(fractal, tmp_path):
    project_id = fractal("--batch", "project", "new", "client project")
    zarr_dir = tmp_path / "zarr"
    dataset_id = fractal("--batch", "project", "add-dataset", project_id, "plate", "--zarr-dir", str(zarr_dir))
    create_images = fractal(
        "--batch", "task", "new", "Create Images", "--command-non-parallel", mock_command("create_images.py")
    )
    compound = fractal(
        "--batch",
        "task",
        "new",
        "Make MIP",
        "--command-non-parallel",
        mock_command("generic_compound_init.py"),
        "--command-parallel",
        mock_command("generic_compound_compute.py"),
    )
    workflow_id = fractal("--batch", "workflow", "new", "client workflow", project_id)
    fractal(
        "workflow",
        "add-task",
        project_id,
        workflow_id,
        "--task-id",
        create_images,
        "--args-non-parallel",
        write_json(tmp_path / "create.json", {"num_images": 2}),
    )
    fractal(
        "workflow",
        "add-task",
        project_id,
        workflow_id,
        "--task-id",
        compound,
        "--args-parallel",
        write_json(tmp_path / "mip.json", {"suffix": "_mip"}),
    )
    workflow = json.loads(fractal("workflow", "show", project_id, workflow_id))
    assert [wftask["task"]["type"] for wftask in workflow["task_list"]] == ["non_parallel", "compound"]

    job_id = fractal("--batch", "job", "submit", project_id, workflow_id, dataset_id)
    deadline = time.monotonic() + 60
    while (status := fractal("--batch", "job", "show", project_id, job_id)) == "submitted":
        assert time.monotonic() < deadline, f"job {job_id} still submitted after 60s"
        time.sleep(0.5)
    job = json.loads(fractal("job", "show", project_id, job_id))
    assert status == job["status"] == "done", job["log"]
    assert job["dataset_id"] == int(dataset_id)
    assert 'END workflow "client workflow"' in job["log"]

    output = tmp_path / "logs"
    message = fractal("job", "download-logs", "--output", str(output), project_id, job_id)
    assert "Logs downloaded to" in message
    assert not (tmp_path / "logs_tmp.zip").exists()
    files = {str(path.relative_to(output)) for path in output.rglob("*") if path.is_file()}
    assert {
        "workflow.log",
        "0_create_images/0.args.json",
        "0_create_images/0.log",
        "0_create_images/0.metadiff.json",
        "1_make_mip/1.args.json",
        "1_make_mip/1_par_0000000.args.json",
        "1_make_mip/1_par_0000001.args.json",
        "history.json",
        "images.json",
    } <= files, sorted(files)
    assert (output / "workflow.log").read_text() == job["log"]

    create_args = json.loads((output / "0_create_images/0.args.json").read_text())
    assert create_args == {"zarr_urls": [], "zarr_dir": str(zarr_dir), "num_images": 2}
    compute_args = json.loads((output / "1_make_mip/1_par_0000001.args.json").read_text())
    assert compute_args == {
        "zarr_url": f"{zarr_dir}/plate.zarr/B/01/0",
        "init_args": {"position": 1},
        "suffix": "_mip",
    }
    images = json.loads((output / "images.json").read_text())
    assert sorted(image["zarr_url"] for image in images) == sorted(
        f"{zarr_dir}/plate.zarr/B/{index:02d}/0{suffix}" for index in range(2) for suffix in ("", "_mip")
    )
    assert '"num_images": 2' in (output / "0_create_images/0.log").read_text()
