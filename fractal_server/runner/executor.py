"""The job executor of one server process.

Submitted jobs wait in the database. Each server process runs one executor,
which claims jobs with an atomic compare-and-set update (`executor_id` from
NULL to its own id), so that several gunicorn workers never run a job twice,
on PostgreSQL as on SQLite. Claimed jobs run in threads of this process.

While it runs, the executor refreshes `executor_heartbeat` of its jobs and
watches their `shutdown` files (the stop endpoint writes them). A job whose
process is gone (same host and dead pid, or a stale heartbeat) is released
(`executor_id` back to NULL) and claimed again like a new one: its thread
sees the recorded runner state and adopts the job where it was
(`runner.phases`). A shutting-down executor stops claiming, lets its jobs
detach (their calls keep running) and releases them, for the next process.
"""
import logging
import threading
from pathlib import Path
import time
from datetime import timedelta
from typing import Optional

from flask import Flask
from sqlalchemy import select, update

from fractal_server.db import db, utc_now
from fractal_server.db.models import JobV2
from fractal_server.process_identity import is_dead, this_process_id
from fractal_server.runner.backend import RunnerBackend
from fractal_server.runner.control import JobControl
from fractal_server.runner.job import run_job
from fractal_server.task_collection.background import fail_orphaned_activities

logger = logging.getLogger("fractal_server.runner")

POLL_SECONDS = 2.0
HEARTBEAT_SECONDS = 10.0
STALE_AFTER = timedelta(seconds=120)
SHUTDOWN_FILE = "shutdown"


class JobExecutor:
    def __init__(self, app: Flask, backend: RunnerBackend):
        self.app = app
        self.backend = backend
        self.id = this_process_id()
        self._running: dict[int, JobControl] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        with self.app.app_context():
            self._recover_orphans()
            db.session.remove()
        self._thread = threading.Thread(target=self._loop, name="fractal-job-executor", daemon=True)
        self._thread.start()
        logger.info("Job executor %s started", self.id)

    def notify(self) -> None:
        """A job was just submitted: look for work now."""
        self._wake.set()

    def running_job_ids(self) -> list[int]:
        with self._lock:
            return list(self._running)

    def _loop(self) -> None:
        last_heartbeat = 0.0
        while not self._stopping.is_set():
            try:
                with self.app.app_context():
                    self._claim_and_start()
                    self._watch_shutdown_files()
                    if time.monotonic() - last_heartbeat > HEARTBEAT_SECONDS:
                        self._heartbeat()
                        self._recover_orphans()
                        last_heartbeat = time.monotonic()
                    db.session.remove()
            except Exception:
                logger.exception("Job executor loop error (will retry)")
            self._wake.wait(POLL_SECONDS if not self._running else 1.0)
            self._wake.clear()

    def _claim_and_start(self) -> None:
        candidates = db.session.scalars(
            select(JobV2.id)
            .where(JobV2.status == "submitted", JobV2.executor_id.is_(None))
            .order_by(JobV2.id)
        ).all()
        for job_id in candidates:
            if self._stopping.is_set():
                return
            claimed = db.session.execute(
                update(JobV2)
                .where(JobV2.id == job_id, JobV2.executor_id.is_(None), JobV2.status == "submitted")
                .values(executor_id=self.id, executor_heartbeat=utc_now())
            ).rowcount
            db.session.commit()
            if claimed == 1:
                self._start(job_id)

    def _start(self, job_id: int) -> None:
        working_dir = db.session.scalar(select(JobV2.working_dir).where(JobV2.id == job_id))
        control = JobControl(job_id=job_id, working_dir=Path(working_dir))
        logger.info("Executor %s runs job %s", self.id, job_id)

        def target():
            try:
                if run_job(self.app, self.backend, control):
                    self._release(job_id)
            finally:
                with self._lock:
                    self._running.pop(job_id, None)
                    self._threads.pop(job_id, None)
                self._wake.set()

        thread = threading.Thread(target=target, name=f"fractal-job-{job_id}", daemon=True)
        with self._lock:
            self._running[job_id] = control
            self._threads[job_id] = thread
        thread.start()

    def _release(self, job_id: int) -> None:
        """Let go of a job that detached: the next executor to look claims it."""
        with self.app.app_context():
            db.session.execute(
                update(JobV2).where(JobV2.id == job_id, JobV2.executor_id == self.id).values(executor_id=None)
            )
            db.session.commit()
            db.session.remove()
        logger.info("Job %s released by executor %s; its calls keep running", job_id, self.id)

    def _watch_shutdown_files(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for control in running:
            if not control.stop_requested.is_set() and (control.working_dir / SHUTDOWN_FILE).exists():
                logger.info("Stopping job %s: a stop was requested", control.job_id)
                control.request_stop()

    def _heartbeat(self) -> None:
        ids = self.running_job_ids()
        if ids:
            db.session.execute(
                update(JobV2).where(JobV2.id.in_(ids)).values(executor_heartbeat=utc_now())
            )
            db.session.commit()

    def _heartbeat_in_own_context(self) -> None:
        try:
            with self.app.app_context():
                self._heartbeat()
                db.session.remove()
        except Exception:
            logger.exception("Job executor heartbeat failed during shutdown")

    def _recover_orphans(self) -> None:
        self.release_orphaned_jobs()
        # Task-group activities (collections, deactivations, reactivations) run in server processes too.
        fail_orphaned_activities()

    def release_orphaned_jobs(self) -> None:
        """Release the submitted jobs whose executor is gone, for a live one to adopt them."""
        claimed = db.session.execute(
            select(JobV2.id, JobV2.executor_id, JobV2.executor_heartbeat).where(
                JobV2.status == "submitted", JobV2.executor_id.is_not(None), JobV2.executor_id != self.id
            )
        ).all()
        now = utc_now()
        for job_id, executor_id, heartbeat in claimed:
            if heartbeat is not None and heartbeat.tzinfo is None:
                heartbeat = heartbeat.replace(tzinfo=now.tzinfo)
            dead = is_dead(executor_id)
            if not (dead or heartbeat is None or now - heartbeat > STALE_AFTER):
                continue
            released = db.session.execute(
                update(JobV2)
                .where(JobV2.id == job_id, JobV2.executor_id == executor_id)
                .values(executor_id=None)
            ).rowcount
            db.session.commit()
            if released:
                why = "is no longer running" if dead else f"sent no heartbeat since {heartbeat}"
                logger.warning("Job %s: its server process %s %s; it will be adopted", job_id, executor_id, why)
        if claimed:
            self._wake.set()

    def shutdown(self, grace_seconds: float) -> None:
        """Stop claiming; let running jobs detach within `grace_seconds`, leaving their calls running.

        A job detaches at its next safe point (between two polls of its
        running calls, or between two tasks) and is released at once for
        another process to adopt. A job still busy after the grace time (e.g.
        writing a large image list into its dataset) stays claimed by this
        process; once the process is gone, the next executor adopts it.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            # A claim in progress ends first: no job starts once we look.
            self._thread.join(timeout=5.0)
        with self._lock:
            running = list(self._running.values())
            threads = list(self._threads.values())
        if not running:
            return
        logger.info("Detaching %s running job(s), within %ss", len(running), grace_seconds)
        for control in running:
            control.request_detach()
        deadline = time.monotonic() + grace_seconds
        last_heartbeat = time.monotonic()
        for thread in threads:
            while thread.is_alive() and time.monotonic() < deadline:
                thread.join(timeout=0.2)
                if time.monotonic() - last_heartbeat > HEARTBEAT_SECONDS:
                    # The loop no longer runs: without this, other processes would
                    # take jobs still finishing here for orphans after STALE_AFTER.
                    self._heartbeat_in_own_context()
                    last_heartbeat = time.monotonic()
        remaining = self.running_job_ids()
        if remaining:
            logger.warning("Job(s) %s did not detach within %ss; the next server process adopts them", remaining, grace_seconds)
