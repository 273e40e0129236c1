class FractalConfigurationError(RuntimeError):
    """A setting is missing or wrong; the message names it and says why.

    Start-up code catches this error and prints its message as one line,
    without a traceback.
    """
