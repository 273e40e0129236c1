"""Whether a user's settings fit the runner backend: asked of the backend, for jobs and task collection."""
from fractal_server.db.models import User
from fractal_server.runner.backend import RunnerBackend, UserSettingsError


def check_user_settings(user: User, backend: RunnerBackend) -> None:
    """Raise `UserSettingsError` (answered 422) unless the settings the backend
    needs are set (an empty account list is fine) and valid."""
    settings = user.settings
    missing = [
        name for name in backend.required_user_settings if settings is None or getattr(settings, name) is None
    ]
    try:
        if missing:
            raise UserSettingsError(f"missing {', '.join(missing)}")
        if backend.check_user_settings is not None:
            backend.check_user_settings(settings)
    except UserSettingsError as error:
        raise UserSettingsError(
            f"User settings are not valid for FRACTAL_RUNNER_BACKEND='{backend.name}'. Original error: {error}"
        ) from None
