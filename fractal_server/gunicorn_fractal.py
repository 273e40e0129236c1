"""A gunicorn worker that shuts down cleanly when gunicorn aborts it.

On a request timeout gunicorn sends SIGABRT to the worker, which normally
exits at once. `FractalWorker` treats SIGABRT like SIGTERM (after
gunicorn's `worker_abort` hook): it stops accepting requests and runs the
server's shutdown (which lets running jobs finish or fail cleanly), while
still telling the arbiter it is alive.
"""
import threading

from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker

HEARTBEAT_SECONDS = 1.0


class FractalWorker(ThreadWorker):
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
            state.shutdown()
        finally:
            done.set()


class FractalGunicornLogger(Logger):
    error_fmt = r"%(asctime)s   - gunicorn.error - %(levelname)s - [pid %(process)d] - %(message)s"
    datefmt = None  # logging's default, with milliseconds: 2024-01-31 12:34:56,789
