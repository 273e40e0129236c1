"""What one server process knows besides Flask's own state."""
import logging
import threading
from dataclasses import dataclass, field
from typing import Optional

import pluggy
from flask import Flask, current_app

from fractal_server.config.settings import Settings
from fractal_server.runner.backend import RunnerBackend
from fractal_server.runner.executor import JobExecutor

logger = logging.getLogger("fractal_server")


@dataclass
class ServerState:
    settings: Settings
    plugins: pluggy.PluginManager
    backend: RunnerBackend
    dev_mode: bool
    uses_embedded_database: bool
    executor: Optional[JobExecutor] = None
    _executor_lock: threading.Lock = field(default_factory=threading.Lock)

    def start_executor(self, app: Flask) -> None:
        """Start running submitted jobs in this process (serving processes only; idempotent)."""
        with self._executor_lock:
            if self.executor is None:
                self.executor = JobExecutor(app, self.backend)
                self.executor.start()

    def shutdown(self, grace_seconds: Optional[float] = None) -> None:
        """Called once when the serving process stops (waitress or gunicorn worker).

        Running jobs get `grace_seconds` to end (default:
        `FRACTAL_GRACEFUL_SHUTDOWN_TIME`), e.g. less when gunicorn would kill
        the worker earlier.
        """
        logger.info("Fractal server process shutting down")
        if grace_seconds is None:
            grace_seconds = self.settings.FRACTAL_GRACEFUL_SHUTDOWN_TIME
        if self.executor is not None:
            self.executor.shutdown(grace_seconds)
        logger.info("Fractal server process shut down")


def server_state() -> ServerState:
    return current_app.extensions["fractal"]


def current_settings() -> Settings:
    return server_state().settings
