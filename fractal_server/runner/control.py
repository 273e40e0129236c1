"""What the job executor can ask of a job running in one of its threads."""
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class JobControl:
    job_id: int
    working_dir: Path
    stop_requested: threading.Event = field(default_factory=threading.Event)
    """Cancel the job's calls and fail it (the stop endpoint)."""
    detach_requested: threading.Event = field(default_factory=threading.Event)
    """Let go of the job, leaving its calls running (this process is shutting down)."""
    _wake: threading.Event = field(default_factory=threading.Event)

    def request_stop(self) -> None:
        self.stop_requested.set()
        self._wake.set()

    def request_detach(self) -> None:
        self.detach_requested.set()
        self._wake.set()

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`; a stop or detach request ends the sleep at once."""
        self._wake.wait(seconds)
        self._wake.clear()
