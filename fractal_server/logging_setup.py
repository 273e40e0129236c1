"""Console logging of the server process."""
import logging

LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


def configure_logging(level: int) -> None:
    """Send `fractal_server.*` records at `level` and above to stderr (idempotent)."""
    logger = logging.getLogger("fractal_server")
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
