"""Entry point of the local backends."""
from fractal_server.plugins import hookimpl
from fractal_server.runner.backend import RunnerBackend
from fractal_server_local_backend.config import check_local_settings
from fractal_server_local_backend.runner import LocalExperimentalRunner, LocalRunner

DISTRIBUTION = "fractal-server-local-backend"


@hookimpl
def fractal_runner_backends():
    return [
        RunnerBackend(
            name="local",
            check_settings=check_local_settings,
            create_runner=LocalRunner,
            supports_stop=False,
            distribution=DISTRIBUTION,
        ),
        RunnerBackend(
            name="local_experimental",
            check_settings=check_local_settings,
            create_runner=LocalExperimentalRunner,
            supports_stop=True,
            distribution=DISTRIBUTION,
        ),
    ]
