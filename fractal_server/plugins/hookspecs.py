"""The hooks a fractal-server plugin can implement.

A plugin is a module of functions decorated with
`fractal_server.plugins.hookimpl`, named by an entry point of the group
`fractal_server` in the plugin's distribution:

    entry_points={"fractal_server": ["my_backend = my_package.plugin"]}

Each hook is called at start-up and returns descriptions; the core decides
what to use (one runner backend, chosen by `FRACTAL_RUNNER_BACKEND`; every
auth provider and task collector).
"""
from fractal_server.plugins import hookspec


@hookspec
def fractal_runner_backends():
    """Return a list of `fractal_server.runner.backend.RunnerBackend`.

    Called once when the application is created. Backend names must be
    unique among installed plugins.
    """


@hookspec
def fractal_auth_providers(settings):
    """Return a list of `fractal_server.auth.providers.AuthProvider`.

    Called once when the application is created, with the validated
    settings; return an empty list when the settings do not enable the
    provider.
    """


@hookspec
def fractal_task_collectors():
    """Return a list of `fractal_server.task_collection.collectors.TaskCollector`.

    Called once when the application is created. Collector names must be
    unique; each one answers at `/api/v2/task/collect/<name>/`.
    """
