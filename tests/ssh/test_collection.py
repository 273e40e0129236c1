"""Task collection over SSH, through the HTTP API of a real `slurm_ssh` server.

The server runs as the service account, which cannot read the remote
user's home: every environment is built there, and every file reaches it,
through SSH. The remote Python is Debian's `/usr/bin/python3`. A job then
runs the collected tasks on the cluster, over SSH too.
"""
import shutil
from pathlib import Path
import uuid

import pytest
from collection.helpers import build_mock_wheel, mock_manifest, wait_for_activity
from servers import DEFAULT_ADMIN
from slurm.cluster import as_service_account, slurm_jobs
from slurm.deployment import SlurmDeployment, User, running_deployment

from .remote import (
    ADDRESS,
    PORT,
    REMOTE_HOME,
    REMOTE_PYTHON,
    REMOTE_PYTHON_VERSION,
    REMOTE_USER,
    as_root,
    server_environ,
    ssh_settings,
)


class SSHServer:
    """A `slurm_ssh` server run by the service account, and its default admin over HTTP,
    whose SSH settings lead to the test sshd with folders under `remote_root`."""

    def __init__(self, deployment: SlurmDeployment, remote_root: str):
        self.deployment = deployment
        self.remote_root = remote_root
        self.admin = User(deployment, DEFAULT_ADMIN, project_dir=Path(remote_root) / "zarr")
        self.client, self.headers, self.user_id = self.admin.client, self.admin.headers, self.admin.id
        self.set_ssh_settings()

    def call(self, method: str, path: str, body=None, status: int = 200):
        response = getattr(self.client, method)(path, **({} if body is None else {"json": body}), headers=self.headers)
        assert response.status_code == status, response.text
        return response.json

    def set_ssh_settings(self, ssh_host: str = f"{ADDRESS}:{PORT}") -> None:
        self.admin.give_settings(self.user_id, ssh_settings(self.remote_root, ssh_host))

    def activity(self, response: dict) -> dict:
        return wait_for_activity(self.client, self.headers, response["id"], timeout=600, interval=0.5)

    def task_group(self, group_id: int) -> dict:
        return self.call("get", f"/api/v2/task-group/{group_id}/")


@pytest.fixture(scope="module")
def ssh_server(sshd_running, slurm_cluster):
    remote_root = f"{REMOTE_HOME}/collection-{uuid.uuid4().hex[:8]}"
    with running_deployment("ssh", **server_environ()) as deployment:
        yield SSHServer(deployment, remote_root)
    as_root(["rm", "-rf", remote_root])


@pytest.fixture(scope="module")
def tasks_dir(ssh_server) -> str:
    """The user's `ssh_tasks_dir`, in the remote user's private home (created by the collection)."""
    return ssh_settings(ssh_server.remote_root)["ssh_tasks_dir"]


@pytest.fixture(scope="module")
def wheel(ssh_server):
    """The mock task wheel, in a folder of the server's machine that the service account reads."""
    root = ssh_server.deployment.root / "wheel"
    root.mkdir(mode=0o755)
    wheel = build_mock_wheel(root)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return wheel


@pytest.fixture(scope="module")
def collected(ssh_server, tasks_dir, wheel) -> dict:
    """The answer of a pip collection of the mock wheel, and its finished activity."""
    pending = ssh_server.call("post", "/api/v2/task/collect/pip/", {"package": str(wheel)}, 202)
    return {"pending": pending, "activity": ssh_server.activity(pending)}


def remote_exists(path: str) -> bool:
    return as_root(["test", "-e", path]).returncode == 0


def remote_owner(path: str) -> str:
    return as_root(["stat", "-c", "%U", path]).stdout.strip()


def test_a_wheel_is_collected_on_the_remote_host(ssh_server, tasks_dir, wheel, collected):
    activity = collected["activity"]
    assert activity["status"] == "OK", activity["log"]
    group = ssh_server.task_group(activity["taskgroupv2_id"])
    path = f"{tasks_dir}/{ssh_server.user_id}/fractal-tasks-mock/0.0.1"
    venv = f"{path}/venv"
    assert (group["path"], group["venv_path"], group["wheel_path"]) == (path, venv, f"{path}/{wheel.name}")
    assert group["python_version"] == REMOTE_PYTHON_VERSION
    assert f"fractal-tasks-mock @ file://{path}/{wheel.name}" in group["pip_freeze"]
    assert group["venv_size_in_kB"] > 1000 and group["venv_file_number"] > 100

    # Built remotely, by the remote user, where the server's own account cannot look.
    assert remote_owner(f"{venv}/bin/python") == REMOTE_USER
    assert remote_owner(f"{path}/{wheel.name}") == REMOTE_USER
    assert as_service_account(["test", "-e", path]).returncode != 0
    package_root = f"{venv}/lib/python{REMOTE_PYTHON_VERSION}/site-packages/fractal_tasks_mock"
    assert [task["name"] for task in group["task_list"]] == [task["name"] for task in mock_manifest()["task_list"]]
    for task in group["task_list"]:
        for command in filter(None, (task["command_non_parallel"], task["command_parallel"])):
            python, script = command.split()
            assert python == f"{venv}/bin/python" and script.startswith(f"{package_root}/")
            assert remote_exists(script)

    log = activity["log"]
    assert f"Copied {wheel} to {path}/{wheel.name}" in log
    assert f"START create venv: {REMOTE_PYTHON} -m venv {venv} --copies" in log
    assert f"START install package: {venv}/bin/python -m pip install --no-cache-dir {path}/{wheel.name}" in log
    assert f"Manifest absolute path: {package_root}/__FRACTAL_MANIFEST__.json" in log
    assert "END: success." in log


def test_the_collected_tasks_run_remotely(ssh_server, collected):
    group = ssh_server.task_group(collected["activity"]["taskgroupv2_id"])
    python = f"{group['venv_path']}/bin/python"
    result = as_root(["runuser", "-u", REMOTE_USER, "--", python, "-c", "import fractal_tasks_mock; print('ok')"])
    assert result.stdout == "ok\n", result.stderr


def test_a_job_runs_the_collected_tasks_on_the_cluster(ssh_server, collected):
    group = ssh_server.task_group(collected["activity"]["taskgroupv2_id"])
    tasks = {task["name"]: task["id"] for task in group["task_list"]}
    user = ssh_server.admin
    workflow_id = user.workflow(
        (tasks["create_images"], {"args_non_parallel": {"num_images": 3}}),
        (tasks["generic_parallel"], {"args_parallel": {"attributes": {"collected": True}}}),
        (tasks["generic_compound"], {}),
    )
    dataset_id = user.dataset("collected-tasks")
    job = user.wait(user.submit(workflow_id, dataset_id)["id"], timeout=180)
    assert job["status"] == "done", job["log"]
    images = {image["zarr_url"]: image for image in user.images(dataset_id)}
    created = sorted(url for url in images if not url.endswith("_mip"))
    assert len(created) == 3 and [images[url]["attributes"]["collected"] for url in created] == [True] * 3
    assert sorted(url for url in images if url.endswith("_mip")) == [f"{url}_mip" for url in created]
    records = slurm_jobs(job)
    assert records and {record["JobState"] for record in records} == {"COMPLETED"}
    assert {record["UserId"].split("(")[0] for record in records} == {REMOTE_USER}


def test_deactivation_and_reactivation_on_the_remote_host(ssh_server, collected, wheel):
    group_id = collected["activity"]["taskgroupv2_id"]
    group = ssh_server.task_group(group_id)
    venv, path = group["venv_path"], group["path"]

    pending = ssh_server.call("post", f"/api/v2/task-group/{group_id}/deactivate/", status=202)
    activity = ssh_server.activity(pending)
    assert activity["status"] == "OK", activity["log"]
    assert f"Removed {venv}" in activity["log"]
    assert not remote_exists(venv)
    assert remote_exists(f"{path}/{wheel.name}")  # kept, to reinstall from
    assert ssh_server.task_group(group_id)["active"] is False

    pending = ssh_server.call("post", f"/api/v2/task-group/{group_id}/reactivate/", status=202)
    activity = ssh_server.activity(pending)
    assert activity["status"] == "OK", activity["log"]
    assert f"START install from pip freeze: {venv}/bin/python -m pip install --no-cache-dir -r {path}/" in activity["log"]
    assert remote_owner(f"{venv}/bin/python") == REMOTE_USER
    assert not remote_exists(f"{path}/_tmp_pip_freeze.txt")
    assert ssh_server.task_group(group_id)["active"] is True


def test_a_failed_collection_removes_the_remote_folder_and_the_group(ssh_server, tasks_dir, wheel, collected):
    other = wheel.parent / "fractal_tasks_mock-0.0.2-py3-none-any.whl"
    shutil.copyfile(wheel, other)
    other.chmod(0o644)
    body = {"package": str(other), "pinned_package_versions": {"not-a-dependency": "1.0"}}
    pending = ssh_server.call("post", "/api/v2/task/collect/pip/", body, 202)
    activity = ssh_server.activity(pending)
    path = f"{tasks_dir}/{ssh_server.user_id}/fractal-tasks-mock/0.0.2"
    assert activity["status"] == "failed"
    log = activity["log"]
    assert "START check that pinned package not-a-dependency is installed" in log
    assert f"Removed {path}\n" in log
    assert f"Deleted task group {pending['taskgroupv2_id']}." in log
    assert not remote_exists(path)
    assert activity["taskgroupv2_id"] is None
    ssh_server.call("get", f"/api/v2/task-group/{pending['taskgroupv2_id']}/", status=404)


def test_custom_collection_for_a_remote_environment(ssh_server, collected):
    group = ssh_server.task_group(collected["activity"]["taskgroupv2_id"])
    package_root = f"{group['venv_path']}/lib/python{REMOTE_PYTHON_VERSION}/site-packages/fractal_tasks_mock"
    body = {
        "manifest": mock_manifest(),
        "python_interpreter": f"{group['venv_path']}/bin/python",
        "label": "mock-tasks-remote",
        "package_root": package_root,
    }
    tasks = ssh_server.call("post", "/api/v2/task/collect/custom/", body, 201)
    assert len(tasks) == len(mock_manifest()["task_list"])
    for task in tasks:
        command = task["command_non_parallel"] or task["command_parallel"]
        assert command.startswith(f"{group['venv_path']}/bin/python {package_root}/")
    without_root = {**body, "label": "other", "package_name": "fractal-tasks-mock"}
    del without_root["package_root"]
    response = ssh_server.client.post("/api/v2/task/collect/custom/", json=without_root, headers=ssh_server.headers)
    assert (response.status_code, response.json) == (
        422,
        {"detail": "Cannot infer 'package_root' with 'slurm_ssh' backend."},
    )


def test_an_unreachable_host_fails_the_collection_with_its_name(ssh_server, tasks_dir, wheel, collected):
    closed_port = PORT + 1
    ssh_server.set_ssh_settings(ssh_host=f"{ADDRESS}:{closed_port}")
    try:
        other = wheel.parent / "fractal_tasks_mock-0.0.3-py3-none-any.whl"
        shutil.copyfile(wheel, other)
        other.chmod(0o644)
        pending = ssh_server.call("post", "/api/v2/task/collect/pip/", {"package": str(other)}, 202)
        activity = ssh_server.activity(pending)
    finally:
        ssh_server.set_ssh_settings()
    assert activity["status"] == "failed"
    assert f"Cannot reach {REMOTE_USER}@{ADDRESS}:{closed_port} to look for {tasks_dir}/" in activity["log"]
    assert "Task collection failed." in activity["log"]
    assert activity["taskgroupv2_id"] is None
