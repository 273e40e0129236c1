"""The local backends fulfil the backend contract (`tests/backend_contract.py`)."""
import pytest

from fractal_server.plugins.manager import available_backends
from fractal_server.runner.backend import JobContext


@pytest.mark.parametrize("name", ["local", "local_experimental"])
def test_local_backends(app, backend_contract, tmp_path, name):
    backend = available_backends(app.extensions["fractal"].plugins)[name]
    context = JobContext(
        job_id=1,
        working_dir=tmp_path,
        working_dir_user=str(tmp_path),
        settings=app.extensions["fractal"].settings,
        user_settings=None,
        slurm_account=None,
        worker_init=None,
        logger_name="contract",
    )
    backend_contract(lambda: backend.create_runner(context), tmp_path)
