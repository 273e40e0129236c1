"""The job executor of one server process.

Submitted jobs wait in the database. Each server process runs one executor,
which claims jobs with an atomic compare-and-set update (`executor_id` from
NULL to its own id), so that several gunicorn workers never run a job twice,
on PostgreSQL as on SQLite. Claimed jobs run in threads of this process.

While it runs, the executor refreshes `executor_heartbeat` of its jobs,
watches their `shutdown` files (the stop endpoint writes them), and fails
jobs whose process died (same host and dead pid, or a stale heartbeat), so
that no job stays `submitted` forever.
"""
import logging
import os
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Optional

from flask import Flask
from sqlalchemy import select, update

from fractal_server.db import db, utc_now
from fractal_server.db.models import JobV2
from fractal_server.runner.backend import RunnerBackend
from fractal_server.runner.job import RunningJob, run_job

logger = logging.getLogger("fractal_server.runner")

POLL_SECONDS = 2.0
HEARTBEAT_SECONDS = 10.0
STALE_AFTER = timedelta(seconds=120)
SHUTDOWN_FILE = "shutdown"
SHUTDOWN_LOG = "Job stopped due to app shutdown"
STOP_WAIT_SECONDS = 5.0
"""How long a stopped job has to record its end, during a shutdown."""


def _process_start_ticks(pid: int) -> Optional[str]:
    """When the process started (from /proc), to tell a reused pid apart."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[19]


def this_process_id() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start_ticks(pid)}"


def is_dead(executor_id: str) -> bool:
    """Whether a process of this host with that id is gone."""
    host, pid, ticks = executor_id.rsplit(":", 2)
    return host == socket.gethostname() and _process_start_ticks(int(pid)) != ticks


class JobExecutor:
    def __init__(self, app: Flask, backend: RunnerBackend):
        self.app = app
        self.backend = backend
        self.id = this_process_id()
        self._running: dict[int, RunningJob] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        with self.app.app_context():
            self.fail_orphaned_jobs()
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
                        self.fail_orphaned_jobs()
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
        running = RunningJob(job_id=job_id, working_dir=Path(working_dir))
        with self._lock:
            self._running[job_id] = running
        logger.info("Executor %s runs job %s", self.id, job_id)

        def target():
            try:
                run_job(self.app, self.backend, running)
            finally:
                with self._lock:
                    self._running.pop(job_id, None)
                self._wake.set()

        threading.Thread(target=target, name=f"fractal-job-{job_id}", daemon=True).start()

    def _watch_shutdown_files(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for job in running:
            if not job.stop_requested.is_set() and (job.working_dir / SHUTDOWN_FILE).exists():
                self.stop_job(job, reason="a stop was requested")

    def stop_job(self, job: RunningJob, reason: str) -> None:
        logger.info("Stopping job %s: %s", job.job_id, reason)
        job.stop_requested.set()
        if job.runner is not None:
            job.runner.stop()

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

    def fail_orphaned_jobs(self) -> None:
        """Fail submitted jobs whose executor is gone; say why in their log."""
        claimed = db.session.scalars(
            select(JobV2).where(JobV2.status == "submitted", JobV2.executor_id.is_not(None))
        ).all()
        now = utc_now()
        for job in claimed:
            if job.executor_id == self.id:
                continue
            heartbeat = job.executor_heartbeat
            if heartbeat is not None and heartbeat.tzinfo is None:
                heartbeat = heartbeat.replace(tzinfo=now.tzinfo)
            dead = is_dead(job.executor_id)
            stale = heartbeat is None or now - heartbeat > STALE_AFTER
            if not (dead or stale):
                continue
            why = "is no longer running" if dead else f"sent no heartbeat since {heartbeat}"
            job.status = "failed"
            job.end_timestamp = now
            job.log = (job.log or "") + (
                f"\nJob failed: the server process that ran it ({job.executor_id}) {why}; "
                "it was probably killed or crashed.\n"
            )
            logger.warning("Job %s failed: its server process %s %s", job.id, job.executor_id, why)
        db.session.commit()
        # Task-group activities (collections, deactivations, reactivations) run in server processes too.
        from fractal_server.task_collection.background import fail_orphaned_activities  # (import cycle)

        fail_orphaned_activities()

    def shutdown(self, grace_seconds: float) -> None:
        """Stop claiming; give running jobs `grace_seconds` to end, then stop and fail them.

        Jobs stopped because of the shutdown (all running ones with a backend
        that can stop, those still running after the grace time otherwise)
        end `failed`, with `Job stopped due to app shutdown` at the end of
        their log. Their threads are given a few seconds to record how they
        ended (and to archive their folder) before that line is added, so
        that they do not overwrite it.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            # A claim in progress ends first: no job starts once we look.
            self._thread.join(timeout=STOP_WAIT_SECONDS)
        with self._lock:
            running = list(self._running.values())
        if not running:
            return
        logger.info("Waiting up to %ss for %s running job(s)", grace_seconds, len(running))
        stopped: set[int] = set()
        if self.backend.supports_stop:
            for job in running:
                self.stop_job(job, reason="the server is shutting down")
                stopped.add(job.job_id)
        deadline = time.monotonic() + grace_seconds
        last_heartbeat = time.monotonic()
        while self.running_job_ids() and time.monotonic() < deadline:
            time.sleep(0.2)
            if time.monotonic() - last_heartbeat > HEARTBEAT_SECONDS:
                # The loop no longer runs: without this, other processes would
                # take jobs still finishing here for orphans after STALE_AFTER.
                self._heartbeat_in_own_context()
                last_heartbeat = time.monotonic()
        with self._lock:
            remaining = list(self._running.values())
        for job in remaining:
            self.stop_job(job, reason="the graceful-shutdown time is over")
            stopped.add(job.job_id)
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while stopped & set(self.running_job_ids()) and time.monotonic() < deadline:
            time.sleep(0.1)
        with self.app.app_context():
            for job_id in sorted(stopped):
                job = db.session.get(JobV2, job_id)
                if job is None or job.status == "done":
                    continue
                if job.status == "submitted":
                    job.status = "failed"
                    job.end_timestamp = utc_now()
                job.log = (job.log or "") + f"\n{SHUTDOWN_LOG}\n"
                logger.info("Job %s stopped due to app shutdown", job_id)
            db.session.commit()
            db.session.remove()
