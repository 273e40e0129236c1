"""What one server process knows besides Flask's own state."""
import logging
from dataclasses import dataclass

import pluggy
from flask import current_app

from fractal_server.config.settings import Settings
from fractal_server.runner.backend import RunnerBackend

logger = logging.getLogger("fractal_server")


@dataclass
class ServerState:
    settings: Settings
    plugins: pluggy.PluginManager
    backend: RunnerBackend
    dev_mode: bool
    uses_embedded_database: bool

    def shutdown(self) -> None:
        """Called once when the serving process stops (waitress or gunicorn worker)."""
        logger.info("Fractal server process shutting down")


def server_state() -> ServerState:
    return current_app.extensions["fractal"]


def current_settings() -> Settings:
    return server_state().settings
