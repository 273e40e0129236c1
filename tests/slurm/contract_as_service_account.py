"""Run the backend contract (`tests/backend_contract.py`) for a SLURM backend, as the caller's account.

    python contract_as_service_account.py <spec.json>

`check_as_service_account` runs it as the service account, as the server
runs: the runner of the backend that the spec's `FRACTAL_RUNNER_BACKEND`
names (`slurm`: through sudo; `slurm_ssh`: over SSH) submits, polls and
cancels the calls of the spec's user. The spec gives the server settings
(environment variables), the user's settings, the server-side job folder
(made here, by the service account) and the task folder. Exit status 0:
the contract holds.
"""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend_contract import check_backend_contract  # noqa: E402

from fractal_server.config.settings import settings_from  # noqa: E402
from fractal_server.plugins.manager import load_plugins, select_backend  # noqa: E402
from fractal_server.runner.backend import JobContext  # noqa: E402


def check_as_service_account(spec: dict, spec_file: Path, as_service_account: list[str]) -> None:
    """Write `spec` to `spec_file` and run the contract with it, prefixed by `as_service_account`."""
    spec_file.write_text(json.dumps(spec))
    spec_file.chmod(0o644)
    result = subprocess.run(
        [*as_service_account, sys.executable, __file__, str(spec_file)],
        capture_output=True,
        text=True,
        cwd="/",
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "contract holds"


def main(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    working_dir = Path(spec["working_dir"])
    working_dir.mkdir(mode=0o700)
    settings = settings_from(spec["environ"])
    backend = select_backend(load_plugins(), settings.FRACTAL_RUNNER_BACKEND)
    user_settings = SimpleNamespace(**spec["user_settings"])
    context = JobContext(
        job_id=1,
        working_dir=working_dir,
        working_dir_user=backend.user_side_dir(user_settings, working_dir.name),
        settings=settings,
        user_settings=user_settings,
        slurm_account=None,
        worker_init=None,
        logger_name="contract",
    )
    check_backend_contract(
        lambda: backend.create_runner(context), working_dir, spec["python"], task_dir=Path(spec["task_dir"])
    )
    print("contract holds")


if __name__ == "__main__":
    main(sys.argv[1])
