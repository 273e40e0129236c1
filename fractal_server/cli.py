"""`fractalctl`: start the server, set up the database, write the OpenAPI document."""
import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from sqlalchemy.exc import OperationalError

from fractal_server import __version__
from fractal_server.config.errors import FractalConfigurationError

logger = logging.getLogger("fractal_server")

# How long `start --reload` lets the server process shut down (running jobs
# included) before killing it; hupper's default is one second.
RELOAD_SHUTDOWN_SECONDS = 60
WAITRESS_MAX_REQUEST_BODY_BYTES = 1024**3
"""waitress's default `max_request_body_size`."""
MAX_REQUEST_HEADER_BYTES = 4 * 1024**2
"""The request line and headers: room for a few query parameters of 4096 characters, percent-encoded."""


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        args.command(args)
    except FractalConfigurationError as error:
        sys.exit(f"fractalctl: configuration error: {error}")
    except OperationalError as error:
        sys.exit(f"fractalctl: cannot use the database: {database_problem(error)}")


def database_problem(error: OperationalError) -> str:
    """The first line of what the database driver said."""
    return str(error.orig or error).strip().splitlines()[0]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fractalctl", description="fractal-server command line")
    subparsers = parser.add_subparsers(title="commands", required=True)

    start = subparsers.add_parser("start", help="Start the server (with waitress)")
    start.add_argument("--host", default="127.0.0.1", help="bind socket to this host (default: 127.0.0.1)")
    start.add_argument("-p", "--port", type=int, default=8000, help="bind socket to this port (default: 8000)")
    start.add_argument("--reload", action="store_true", help="enable auto-reload")
    start.add_argument(
        "--dev",
        action="store_true",
        help="fill what is not configured with embedded defaults (SQLite, generated secret)",
    )
    start.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data folder of --dev (default: ./fractal-server-data)",
    )
    start.set_defaults(command=start_server)

    set_db = subparsers.add_parser("set-db", help="Create or upgrade the database schema")
    set_db.add_argument(
        "--skip-init-data", action="store_true", help="do not create the default group and admin"
    )
    set_db.set_defaults(command=set_db_command)

    openapi = subparsers.add_parser("openapi", help="Write the OpenAPI document")
    openapi.add_argument("-f", "--openapi-file", default="openapi.json", help="output file")
    openapi.set_defaults(command=openapi_command)

    update = subparsers.add_parser("update-db-data", help="Data migration between versions")
    update.set_defaults(command=update_db_data_command)

    plugins = subparsers.add_parser("plugins", help="List the installed plugins and their hooks")
    plugins.set_defaults(command=plugins_command)
    return parser


def start_server(args: argparse.Namespace) -> None:
    if args.reload:
        import hupper

        hupper.start_reloader("fractal_server.cli.main", shutdown_interval=RELOAD_SHUTDOWN_SECONDS)
    from fractal_server.app import create_app
    from fractal_server.db.setup import prepare_database

    app = create_app(dev=args.dev, data_dir=args.data_dir)
    prepare_database(app, manage=args.dev)
    app.extensions["fractal"].start_executor(app)
    _serve(app, args.host, args.port)


def _serve(app, host: str, port: int) -> None:
    """Serve with waitress until SIGTERM or Ctrl-C, then shut down cleanly."""
    import waitress

    def stop(signum, _frame):
        logger.info("Received %s: stopping", signal.Signals(signum).name)
        # waitress's loop stops on KeyboardInterrupt; most other exceptions
        # would be swallowed by the error handler of the connection at hand.
        raise KeyboardInterrupt

    # waitress refuses bodies above its own limit (1 GiB) with a plain-text 413:
    # never below the server's limit, so that the contract's 413 answers. Its
    # header limit (256 KiB, a plain-text 431) is raised so that query strings
    # at the API's length limit are answered by the API (422).
    body_limit = max(WAITRESS_MAX_REQUEST_BODY_BYTES, app.config["MAX_CONTENT_LENGTH"] + 1)
    server = waitress.create_server(
        app, host=host, port=port, max_request_body_size=body_limit, max_request_header_size=MAX_REQUEST_HEADER_BYTES
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    logger.info("Fractal server %s listening on http://%s:%s", __version__, host, port)
    try:
        server.run()  # returns on KeyboardInterrupt, after stopping its threads
    finally:
        server.close()
        app.extensions["fractal"].shutdown()


def set_db_command(args: argparse.Namespace) -> None:
    from fractal_server.app import create_app
    from fractal_server.db.setup import create_initial_data, upgrade_schema

    app = create_app()
    upgrade_schema(app)
    if not args.skip_init_data:
        create_initial_data(app, app.extensions["fractal"].settings)


def openapi_command(args: argparse.Namespace) -> None:
    from fractal_server.app import create_app
    from fractal_server.http.openapi import build_openapi

    document = build_openapi(create_app())
    Path(args.openapi_file).write_text(json.dumps(document, indent=2) + "\n")
    print(f"OpenAPI document written to {args.openapi_file}")


def update_db_data_command(args: argparse.Namespace) -> None:
    print(
        f"No data migration is needed to reach fractal-server {__version__}: "
        "`fractalctl set-db` is all an upgrade needs."
    )


def plugins_command(args: argparse.Namespace) -> None:
    from fractal_server.plugins.manager import available_backends, describe_plugins, load_plugins

    manager = load_plugins()
    for info in describe_plugins(manager):
        print(f"{info.name} ({info.distribution}): {', '.join(info.hooks) or 'no hooks'}")
    backends = available_backends(manager)
    print("runner backends: " + (", ".join(sorted(backends)) or "none installed"))


if __name__ == "__main__":
    main()
