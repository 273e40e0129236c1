"""Console logging of the server process."""
import logging
from collections.abc import Iterable

LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


def configure_logging(level: int, packages: Iterable[str] = ()) -> None:
    """Send records of `fractal_server.*`, and of the plugin `packages`, at `level` and above to stderr (idempotent).

    A plugin's modules log under their own package name (`logging.getLogger(__name__)`),
    outside `fractal_server`: without this their records would reach the root
    logger, which shows warnings only.
    """
    for name in ("fractal_server", *packages):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.propagate = False
        if not any(getattr(h, "fractal_console", False) for h in logger.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter(LOG_FORMAT))
            handler.fractal_console = True
            logger.addHandler(handler)
        for handler in logger.handlers:
            if getattr(handler, "fractal_console", False):
                handler.setLevel(level)
