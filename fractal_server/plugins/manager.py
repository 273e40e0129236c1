"""Loading plugins: the core's built-in ones and the installed entry points."""
import importlib
import types
from dataclasses import dataclass

import pluggy

from fractal_server.config.errors import FractalConfigurationError
from fractal_server.plugins import PROJECT_NAME, hookspecs
from fractal_server.runner.backend import RunnerBackend

BUILTIN_PLUGINS = (
    "fractal_server.auth.password_login",
    "fractal_server.auth.oauth_login",
    "fractal_server.task_collection.pip_collector",
    "fractal_server.task_collection.custom_collector",
)
"""Modules of the core registered like external plugins."""

def load_plugins() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name)
    manager.load_setuptools_entrypoints(PROJECT_NAME)
    return manager


def plugin_packages(manager: pluggy.PluginManager) -> list[str]:
    """The top-level packages of the registered plugins other than the core (where they log)."""
    names = set()
    for plugin in manager.get_plugins():
        module = plugin.__name__ if isinstance(plugin, types.ModuleType) else type(plugin).__module__
        names.add(module.split(".")[0])
    return sorted(names - {"fractal_server"})


def available_backends(manager: pluggy.PluginManager) -> dict[str, RunnerBackend]:
    backends: dict[str, RunnerBackend] = {}
    for provided in manager.hook.fractal_runner_backends():
        for backend in provided:
            if backend.name in backends:
                raise FractalConfigurationError(
                    f"Two installed plugins provide the runner backend '{backend.name}'"
                )
            backends[backend.name] = backend
    return backends


def select_backend(manager: pluggy.PluginManager, name: str) -> RunnerBackend:
    """The backend called `name`, or a configuration error that says what to install."""
    backends = available_backends(manager)
    if name in backends:
        return backends[name]
    installed = ", ".join(sorted(backends)) or "none"
    raise FractalConfigurationError(
        f"FRACTAL_RUNNER_BACKEND={name} but no installed plugin provides it "
        f"(installed backends: {installed}); install the plugin that provides it "
        "(the README's Deployment section lists the backend packages)."
    )


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str
    hooks: tuple[str, ...]


def describe_plugins(manager: pluggy.PluginManager) -> list[PluginInfo]:
    """Every registered plugin, where it comes from and which hooks it implements."""
    distributions = {
        plugin: f"{dist.metadata['name']} {dist.version}"
        for plugin, dist in manager.list_plugin_distinfo()
    }
    infos = []
    for name, plugin in sorted(manager.list_name_plugin(), key=lambda pair: pair[0]):
        hooks = tuple(sorted(caller.name for caller in manager.get_hookcallers(plugin) or []))
        infos.append(PluginInfo(name, distributions.get(plugin, "built-in"), hooks))
    return infos
