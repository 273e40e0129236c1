"""The WSGI application, built on first access to `app`.

    gunicorn fractal_server.main:app --worker-class fractal_server.gunicorn_fractal.FractalWorker
    flask --app fractal_server.main run

Under gunicorn the settings are applied strictly. Under the `flask` command
(which sets `FLASK_RUN_FROM_CLI`), embedded defaults fill what is missing,
as with `fractalctl start --dev`; the embedded SQLite database is then
created or upgraded automatically, while a configured database is left to
`flask db` and `fractalctl set-db`. A configuration problem prints one line
and exits with gunicorn's "application failed to load" status, so that
gunicorn stops instead of restarting workers forever; so does a database
that cannot be reached.
"""
import os
import sys
from typing import NoReturn

from sqlalchemy.exc import OperationalError

from fractal_server.cli import database_problem
from fractal_server.config.errors import FractalConfigurationError

APP_LOAD_ERROR = 4


def build_app():
    from fractal_server.app import create_app
    from fractal_server.db.setup import prepare_database

    under_flask_command = os.environ.get("FLASK_RUN_FROM_CLI") == "true"
    try:
        application = create_app(dev=under_flask_command)
        state = application.extensions["fractal"]
        if not under_flask_command:
            prepare_database(application, manage=False)
            state.start_executor(application)
        else:
            if state.uses_embedded_database:
                prepare_database(application, manage=True)
            # Only `flask run` answers requests: other flask commands must not run jobs.
            application.before_request(lambda: state.start_executor(application))
    except FractalConfigurationError as error:
        _refuse_to_start(f"configuration error: {error}")
    except OperationalError as error:
        _refuse_to_start(f"cannot use the database: {database_problem(error)}")
    return application


def _refuse_to_start(problem: str) -> NoReturn:
    print(f"fractal-server: {problem}", file=sys.stderr)
    raise SystemExit(APP_LOAD_ERROR)


def __getattr__(name: str):
    if name == "app":
        application = build_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
