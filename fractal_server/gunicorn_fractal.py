"""A gunicorn worker that shuts down cleanly when gunicorn aborts it.

On a request timeout gunicorn sends SIGABRT to the worker, which normally
exits at once. `FractalWorker` treats SIGABRT like SIGTERM (after
gunicorn's `worker_abort` hook): it stops accepting requests and runs the
server's shutdown (which lets running jobs finish or fail cleanly), while
still telling the arbiter it is alive.

When the arbiter itself stops (SIGTERM, SIGINT, SIGQUIT), it kills its
workers `graceful_timeout` seconds after telling them to stop, whatever they
are doing. Running jobs then get at most what is left of that time (less
`SHUTDOWN_MARGIN_SECONDS` to stop them and record it), even if
`FRACTAL_GRACEFUL_SHUTDOWN_TIME` is longer: otherwise the worker would be
killed while its jobs' task processes still run, and the jobs would stay
`submitted` until the next start.
"""
import signal
import threading
import time
from typing import Optional

from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker

HEARTBEAT_SECONDS = 1.0
SHUTDOWN_MARGIN_SECONDS = 8.0
"""Time kept, out of gunicorn's graceful_timeout, to stop the jobs still running and record it."""


class FractalWorker(ThreadWorker):
    _stop_requested_at: Optional[float] = None
    """When the arbiter told this worker to stop (it kills it graceful_timeout later)."""

    def handle_exit(self, sig, frame):
        if sig != signal.SIGABRT and self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        super().handle_exit(sig, frame)

    def handle_quit(self, sig, frame):
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        super().handle_quit(sig, frame)

    def handle_abort(self, sig, frame):
        self.log.warning(
            "Worker %s received SIGABRT: shutting down gracefully, as for SIGTERM", self.pid
        )
        self.cfg.worker_abort(self)
        self.handle_exit(sig, frame)

    def run(self):
        try:
            super().run()
        finally:
            self._shutdown_application()

    def _shutdown_application(self) -> None:
        state = getattr(self.wsgi, "extensions", {}).get("fractal")
        if state is None:
            return
        done = threading.Event()

        def heartbeat():
            while not done.wait(HEARTBEAT_SECONDS):
                self.notify()

        threading.Thread(target=heartbeat, daemon=True).start()
        try:
            state.shutdown(self._grace_seconds(state.settings.FRACTAL_GRACEFUL_SHUTDOWN_TIME))
        finally:
            done.set()

    def _grace_seconds(self, configured: float) -> float:
        """The configured grace time, cut to what the arbiter leaves us before killing this worker."""
        if self._stop_requested_at is None:
            return configured
        left = self.cfg.graceful_timeout - (time.monotonic() - self._stop_requested_at) - SHUTDOWN_MARGIN_SECONDS
        if left >= configured:
            return configured
        left = max(left, 0.0)
        self.log.warning(
            "Running jobs get %.0fs instead of FRACTAL_GRACEFUL_SHUTDOWN_TIME=%ss: gunicorn kills this "
            "worker %ss after asking it to stop (--graceful-timeout; set it to at least %.0f)",
            left,
            configured,
            self.cfg.graceful_timeout,
            configured + SHUTDOWN_MARGIN_SECONDS,
        )
        return left


class FractalGunicornLogger(Logger):
    error_fmt = r"%(asctime)s   - gunicorn.error - %(levelname)s - [pid %(process)d] - %(message)s"
    datefmt = None  # logging's default, with milliseconds: 2024-01-31 12:34:56,789
