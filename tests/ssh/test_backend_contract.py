"""The slurm_ssh backend fulfils the backend contract (`tests/backend_contract.py`),
run by the service account, with calls on the local cluster as the remote user over SSH."""
import json
import shutil
import uuid

import pytest
from slurm.cluster import SERVICE_ACCOUNT, TEST_BASE_DIR, cancel_jobs_under, make_owned_dir
from slurm.contract_as_service_account import check_as_service_account
from slurm.deployment import AS_SERVICE_ACCOUNT, SLURM_CONFIG, TASK_PYTHON

from .remote import REMOTE_HOME, REMOTE_USER, as_root, server_environ, ssh_settings

pytestmark = pytest.mark.usefixtures("slurm_cluster", "sshd_running")


@pytest.fixture
def folders():
    """(server-side folder, remote root) of one contract run."""
    name = f"contract-{uuid.uuid4().hex[:8]}"
    server = make_owned_dir(TEST_BASE_DIR / name, SERVICE_ACCOUNT, 0o755)
    remote = REMOTE_HOME / name
    yield server, remote
    cancel_jobs_under(remote, (REMOTE_USER,))
    as_root(["rm", "-rf", str(remote)])
    shutil.rmtree(server)


def test_the_slurm_ssh_backend_fulfils_the_contract(folders):
    server, remote = folders
    # Written by the contract as the service account, read and written by the calls as the remote user.
    task_dir = make_owned_dir(server / "contract-tasks", SERVICE_ACCOUNT, 0o1777)
    config = server / "slurm_config.json"
    config.write_text(json.dumps(SLURM_CONFIG))
    spec = {
        "environ": server_environ(
            FRACTAL_RUNNER_WORKING_BASE_DIR=str(server),
            FRACTAL_TASKS_DIR=str(server / "tasks"),
            FRACTAL_SLURM_CONFIG_FILE=str(config),
            FRACTAL_SLURM_POLL_INTERVAL="1",
            FRACTAL_SLURM_ERROR_HANDLING_INTERVAL="2",
        ),
        "user_settings": ssh_settings(str(remote)),
        "working_dir": str(server / "job_contract"),
        "task_dir": str(task_dir),
        "python": TASK_PYTHON,
    }
    check_as_service_account(spec, server / "contract.json", AS_SERVICE_ACCOUNT)
