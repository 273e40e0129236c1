"""The local backends, and the README's example backend, fulfil the backend contract (`tests/backend_contract.py`)."""
from pathlib import Path

import pytest

from fractal_server.plugins.manager import available_backends
from fractal_server.runner.backend import JobContext


@pytest.mark.parametrize("name", ["local", "local_experimental"])
def test_local_backends(app, backend_contract, tmp_path, name):
    backend = available_backends(app.extensions["fractal"].plugins)[name]
    context = _context(app, tmp_path)
    backend_contract(lambda: backend.create_runner(context), tmp_path)


def _context(app, working_dir: Path) -> JobContext:
    return JobContext(
        job_id=1,
        working_dir=working_dir,
        working_dir_user=str(working_dir),
        settings=app.extensions["fractal"].settings,
        user_settings=None,
        slurm_account=None,
        worker_init=None,
        logger_name="contract",
    )


def test_the_readme_example_backend(app, backend_contract, tmp_path):
    """The worked example of README's "Writing a runner backend" is a working backend."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Writing a runner backend", 1)[1]
    source = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(source, "README-example", "exec"), namespace)
    [backend] = namespace["fractal_runner_backends"]()
    context = _context(app, tmp_path)
    backend_contract(lambda: backend.create_runner(context), tmp_path)
