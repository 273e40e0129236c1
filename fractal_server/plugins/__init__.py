"""Plugin markers. A plugin module decorates its hook functions with `hookimpl`."""
import pluggy

PROJECT_NAME = "fractal_server"
"""Name of the pluggy project and of the entry-point group plugins use."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
