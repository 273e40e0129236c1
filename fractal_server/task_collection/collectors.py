"""Task collectors: ways to turn a package into a task group."""
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint


@dataclass(frozen=True)
class TaskCollector:
    """A task collector, as returned by the `fractal_task_collectors` hook."""

    name: str
    """Collections start at `POST /api/v2/task/collect/<name>/`."""
    create_blueprint: Callable[[], Blueprint]
    """Routes of the collector; mounted under `/api/v2/task/collect/<name>`."""
