"""Run the backend contract (`tests/backend_contract.py`) for the slurm backend, as the caller's account.

    python contract_as_service_account.py <spec.json>

`test_backend_contract.py` runs it as the service account, as the server
runs: the runner submits, polls and cancels the calls of `slurm_user`
through sudo. The spec gives the server settings (environment variables),
the user's settings, the server-side job folder (made here, by the
service account) and the task folder. Exit status 0: the contract holds.
"""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend_contract import check_backend_contract  # noqa: E402

from fractal_server.config.settings import settings_from  # noqa: E402
from fractal_server.runner.backend import JobContext  # noqa: E402
from fractal_server_slurm_backend.runner import SlurmRunner, user_side_dir  # noqa: E402


def main(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    working_dir = Path(spec["working_dir"])
    working_dir.mkdir(mode=0o700)
    user_settings = SimpleNamespace(**spec["user_settings"])
    context = JobContext(
        job_id=1,
        working_dir=working_dir,
        working_dir_user=user_side_dir(user_settings, working_dir.name),
        settings=settings_from(spec["environ"]),
        user_settings=user_settings,
        slurm_account=None,
        worker_init=None,
        logger_name="contract",
    )
    check_backend_contract(
        lambda: SlurmRunner(context), working_dir, spec["python"], task_dir=Path(spec["task_dir"])
    )
    print("contract holds")


if __name__ == "__main__":
    main(sys.argv[1])
