"""The slurm backend fulfils the backend contract (`tests/backend_contract.py`),
run by the service account, with calls as a task user on the local cluster.

The contract's optional time-limit check is not run here: SLURM takes
about 90 s to end a job over its `--time`, and `test_jobs.py` already
checks that end once (`time_limit_job`), through a real server.
"""

import json

import pytest

from .cluster import SERVICE_ACCOUNT, TASK_USERS, make_owned_dir
from .contract_as_service_account import check_as_service_account
from .deployment import AS_SERVICE_ACCOUNT, SLURM_CONFIG, TASK_PYTHON

pytestmark = pytest.mark.usefixtures("slurm_cluster")


def test_the_slurm_backend_fulfils_the_contract(shared_dirs):
    slurm_user = TASK_USERS[0]
    # Written by the contract as the service account, read and written by the calls as the task user.
    task_dir = make_owned_dir(shared_dirs.server.parent / "contract-tasks", SERVICE_ACCOUNT, 0o1777)
    config = shared_dirs.server / "slurm_config.json"
    config.write_text(json.dumps(SLURM_CONFIG))
    spec = {
        "environ": {
            "FRACTAL_RUNNER_BACKEND": "slurm",
            "FRACTAL_RUNNER_WORKING_BASE_DIR": str(shared_dirs.server),
            "FRACTAL_TASKS_DIR": str(shared_dirs.server / "tasks"),
            "FRACTAL_SLURM_CONFIG_FILE": str(config),
            "FRACTAL_SLURM_POLL_INTERVAL": "1",
            "FRACTAL_SLURM_ERROR_HANDLING_INTERVAL": "2",
        },
        "user_settings": {
            "slurm_user": slurm_user,
            "project_dir": str(shared_dirs.users[slurm_user]),
            "slurm_accounts": [],
        },
        "working_dir": str(shared_dirs.server / "job_contract"),
        "task_dir": str(task_dir),
        "python": TASK_PYTHON,
    }
    check_as_service_account(spec, shared_dirs.server / "contract.json", AS_SERVICE_ACCOUNT)
