"""Configuration: how settings are read, validated, defaulted and reported.

The rules come from the "Configuration" page of the reference server and
from sections 2 and 3 of `cli-and-config.md`. Every start-up error must be a
`FractalConfigurationError` with a one-line message naming the variable.
None of these tests needs a database: `create_app` never connects.
"""
import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fractal_server.app import create_app
from fractal_server.config.embedded_defaults import fill_embedded_defaults
from fractal_server.config.errors import FractalConfigurationError
from fractal_server.config.settings import Settings, read_environment, settings_from
from fractal_server.plugins.manager import available_backends, load_plugins

ENV_FILE = ".fractal_server.env"
OWN_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
PYTHON_KEYS = {
    version: "FRACTAL_TASKS_PYTHON_" + version.replace(".", "_")
    for version in ("3.9", "3.10", "3.11", "3.12")
}
OWN_KEY = PYTHON_KEYS.get(OWN_VERSION, f"FRACTAL_TASKS_PYTHON_{OWN_VERSION}")
OTHER_VERSIONS = [version for version in PYTHON_KEYS if version != OWN_VERSION]
FRACTALCTL = Path(sys.executable).parent / "fractalctl"


@pytest.fixture
def complete(tmp_path) -> dict[str, str]:
    """A complete production configuration; the database is never contacted."""
    return {
        "JWT_SECRET_KEY": "a-secret",
        "POSTGRES_DB": "fractal_never_used",
        "FRACTAL_TASKS_DIR": str(tmp_path / "tasks"),
        "FRACTAL_RUNNER_WORKING_BASE_DIR": str(tmp_path / "jobs"),
    }


@pytest.fixture
def config_log(caplog, monkeypatch):
    """Records of the `fractal_server.config` logger at INFO and above.

    `configure_logging` stops `fractal_server` from propagating to the root
    logger (where caplog listens), so the handler goes on the logger itself;
    propagation is switched off meanwhile so that no record is seen twice.
    """
    config_logger = logging.getLogger("fractal_server.config")
    monkeypatch.setattr(config_logger, "propagate", False)
    caplog.set_level(logging.INFO, logger="fractal_server.config")
    config_logger.addHandler(caplog.handler)
    yield caplog
    config_logger.removeHandler(caplog.handler)


def messages(caplog, level: int) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == level]


def without(environ: dict[str, str], *keys: str) -> dict[str, str]:
    return {key: value for key, value in environ.items() if key not in keys}


def start_up_error(environ) -> str:
    """The message of the error `create_app` raises, checked to be one line."""
    with pytest.raises(FractalConfigurationError) as info:
        create_app(environ=environ)
    message = str(info.value)
    assert message and "\n" not in message
    return message


def test_complete_configuration_starts(complete):
    """The baseline of the error tests below: each one changes one thing."""
    settings_from(complete).check()
    app = create_app(environ=complete)
    state = app.extensions["fractal"]
    assert state.backend.name == "local"
    assert state.settings.JWT_SECRET_KEY == "a-secret"


# --------------------------------------------------------------------------
# Validation rules and their messages


@pytest.mark.parametrize("version", PYTHON_KEYS)
def test_tasks_python_must_be_absolute(complete, version):
    key = PYTHON_KEYS[version]
    environ = {**complete, key: f"python{version}"}
    expected = f"Non-absolute value {key}=python{version}"
    with pytest.raises(FractalConfigurationError, match=f"^{expected}$"):
        settings_from(environ)
    assert start_up_error(environ) == expected
    # Also when a default version is configured.
    environ["FRACTAL_TASKS_PYTHON_DEFAULT_VERSION"] = version
    assert start_up_error(environ) == expected


@pytest.mark.parametrize(
    "given",
    [{}, {"FRACTAL_TASKS_PYTHON_3_12": "/usr/bin/python3.12"}],
    ids=["alone", "with-another-interpreter"],
)
def test_default_version_needs_its_interpreter(complete, given):
    environ = {**complete, **given, "FRACTAL_TASKS_PYTHON_DEFAULT_VERSION": "3.10"}
    expected = "FRACTAL_TASKS_PYTHON_DEFAULT_VERSION=3.10 but FRACTAL_TASKS_PYTHON_3_10=None."
    with pytest.raises(FractalConfigurationError) as info:
        settings_from(environ)
    assert str(info.value) == expected
    assert start_up_error(environ) == expected


@pytest.mark.parametrize("value", ["3.8", "3.13", "3_10", "310", "python3.10"])
def test_default_version_must_be_a_supported_version(complete, value):
    environ = {
        **complete,
        "FRACTAL_TASKS_PYTHON_DEFAULT_VERSION": value,
        "FRACTAL_TASKS_PYTHON_3_10": "/usr/bin/python3.10",
    }
    message = start_up_error(environ)
    assert message.startswith("FRACTAL_TASKS_PYTHON_DEFAULT_VERSION: ")
    assert "'3.9'" in message and "'3.12'" in message
    assert message.endswith(f"(given '{value}')")


def test_slurm_worker_python_must_be_absolute(complete):
    environ = {**complete, "FRACTAL_SLURM_WORKER_PYTHON": "bin/python3"}
    expected = "Non-absolute value for FRACTAL_SLURM_WORKER_PYTHON=bin/python3"
    with pytest.raises(FractalConfigurationError) as info:
        settings_from(environ)
    assert str(info.value) == expected
    assert start_up_error(environ) == expected
    environ["FRACTAL_SLURM_WORKER_PYTHON"] = "/opt/venv/bin/python3"
    assert settings_from(environ).FRACTAL_SLURM_WORKER_PYTHON == "/opt/venv/bin/python3"


OIDC = "https://idp.example.org/.well-known/openid-configuration"


@pytest.mark.parametrize(
    "oauth, missing",
    [
        ({"OAUTH_FOO_CLIENT_SECRET": "s", "OAUTH_FOO_OIDC_CONFIGURATION_ENDPOINT": OIDC},
         "OAUTH_FOO_CLIENT_ID"),
        ({"OAUTH_FOO_CLIENT_ID": "i", "OAUTH_FOO_OIDC_CONFIGURATION_ENDPOINT": OIDC},
         "OAUTH_FOO_CLIENT_SECRET"),
        ({"OAUTH_FOO_CLIENT_ID": "i", "OAUTH_FOO_CLIENT_SECRET": "s"},
         "OAUTH_FOO_OIDC_CONFIGURATION_ENDPOINT"),
        ({"OAUTH_GITHUB_CLIENT_SECRET": "s"}, "OAUTH_GITHUB_CLIENT_ID"),
        ({"OAUTH_GOOGLE_CLIENT_ID": "i"}, "OAUTH_GOOGLE_CLIENT_SECRET"),
        ({"OAUTH_FOO_REDIRECT_URL": "https://fractal.example.org/cb"}, "OAUTH_FOO_CLIENT_ID"),
        # Any variable starting with OAUTH_ defines a client, even a mistyped one.
        ({"OAUTH_GITHUB": "x"}, "OAUTH_GITHUB_CLIENT_ID"),
    ],
)
def test_oauth_client_needs_id_secret_and_endpoint(complete, oauth, missing):
    environ = {**complete, **oauth}
    with pytest.raises(FractalConfigurationError) as info:
        settings_from(environ)
    assert str(info.value) == f"Missing {missing}"
    assert start_up_error(environ) == f"Missing {missing}"


@pytest.mark.parametrize("name", ["GOOGLE", "GITHUB"])
def test_google_and_github_need_no_endpoint(complete, name):
    environ = {**complete, f"OAUTH_{name}_CLIENT_ID": "i", f"OAUTH_{name}_CLIENT_SECRET": "s"}
    [client] = create_app(environ=environ).extensions["fractal"].settings.OAUTH_CLIENTS_CONFIG
    assert (client.CLIENT_NAME, client.OIDC_CONFIGURATION_ENDPOINT) == (name, None)


@pytest.mark.parametrize(
    "missing, expected",
    [
        ("JWT_SECRET_KEY", "JWT_SECRET_KEY cannot be None"),
        ("FRACTAL_TASKS_DIR", "FRACTAL_TASKS_DIR cannot be None"),
        ("POSTGRES_DB", "POSTGRES_DB cannot be None."),
        ("FRACTAL_RUNNER_WORKING_BASE_DIR", "FRACTAL_RUNNER_WORKING_BASE_DIR cannot be None."),
    ],
)
def test_required_variables(complete, missing, expected):
    settings = settings_from(without(complete, missing))  # reading alone accepts it
    with pytest.raises(FractalConfigurationError) as info:
        settings.check()
    assert str(info.value) == expected
    assert start_up_error(without(complete, missing)) == expected


def test_empty_secret_counts_as_missing(complete):
    assert start_up_error({**complete, "JWT_SECRET_KEY": ""}) == "JWT_SECRET_KEY cannot be None"


def test_required_variables_are_reported_in_order(complete):
    assert start_up_error({}) == "JWT_SECRET_KEY cannot be None"
    assert start_up_error({"JWT_SECRET_KEY": "s"}) == "FRACTAL_TASKS_DIR cannot be None"
    no_database_no_runner_dir = without(complete, "POSTGRES_DB", "FRACTAL_RUNNER_WORKING_BASE_DIR")
    assert start_up_error(no_database_no_runner_dir) == "POSTGRES_DB cannot be None."
    # The viewer settings are checked before the database (spec section 1).
    broken_viewer = {**without(complete, "POSTGRES_DB"),
                     "FRACTAL_VIEWER_AUTHORIZATION_SCHEME": "users-folders"}
    assert start_up_error(broken_viewer).startswith("FRACTAL_VIEWER_BASE_FOLDER is required")


def test_database_check_can_be_skipped_but_not_the_others(complete):
    settings_from(without(complete, "POSTGRES_DB")).check(require_database=False)
    with pytest.raises(FractalConfigurationError, match="^JWT_SECRET_KEY cannot be None$"):
        settings_from(without(complete, "JWT_SECRET_KEY")).check(require_database=False)


@pytest.mark.parametrize("backend", ["local", "local_experimental"])
def test_local_config_file_must_exist(complete, tmp_path, backend):
    """Checked by the local backend plugin, so only reached through create_app."""
    path = tmp_path / "local.json"
    environ = {**complete, "FRACTAL_RUNNER_BACKEND": backend,
               "FRACTAL_LOCAL_CONFIG_FILE": str(path)}
    settings_from(environ).check()
    assert start_up_error(environ) == (
        f"FRACTAL_RUNNER_BACKEND={backend} but FRACTAL_LOCAL_CONFIG_FILE={path} not found."
    )
    path.write_text("{}")
    assert create_app(environ=environ).extensions["fractal"].backend.name == backend


def test_users_folders_scheme_needs_an_absolute_base_folder(complete):
    environ = {**complete, "FRACTAL_VIEWER_AUTHORIZATION_SCHEME": "users-folders"}
    with pytest.raises(FractalConfigurationError) as info:
        settings_from(environ).check()
    assert str(info.value) == (
        "FRACTAL_VIEWER_BASE_FOLDER is required when "
        "FRACTAL_VIEWER_AUTHORIZATION_SCHEME=users-folders"
    )
    environ["FRACTAL_VIEWER_BASE_FOLDER"] = "data/zarr"
    assert start_up_error(environ) == "Non-absolute value for FRACTAL_VIEWER_BASE_FOLDER=data/zarr"
    environ["FRACTAL_VIEWER_BASE_FOLDER"] = "/data/zarr"
    settings_from(environ).check()


@pytest.mark.parametrize("scheme", ["none", "viewer-paths"])
def test_other_schemes_need_no_base_folder(complete, scheme):
    settings = settings_from({**complete, "FRACTAL_VIEWER_AUTHORIZATION_SCHEME": scheme})
    settings.check()
    assert settings.FRACTAL_VIEWER_AUTHORIZATION_SCHEME == scheme


@pytest.mark.parametrize(
    "name, value",
    [
        ("JWT_EXPIRE_SECONDS", "abc"),
        ("COOKIE_EXPIRE_SECONDS", "1h"),
        ("DB_ECHO", "maybe"),
        ("FRACTAL_LOGGING_LEVEL", "verbose"),
        ("FRACTAL_API_MAX_JOB_LIST_LENGTH", "many"),
        ("FRACTAL_GRACEFUL_SHUTDOWN_TIME", "2.5"),
        ("FRACTAL_MAX_REQUEST_BODY_BYTES", "0"),
        ("FRACTAL_SLURM_SBATCH_SLEEP", "soon"),
        ("FRACTAL_API_V1_MODE", "read-only"),
        ("FRACTAL_VIEWER_AUTHORIZATION_SCHEME", "all"),
    ],
)
def test_wrong_types_name_the_variable_and_the_value(complete, name, value):
    environ = {**complete, name: value}
    with pytest.raises(FractalConfigurationError) as info:
        settings_from(environ)
    message = str(info.value)
    assert message.startswith(f"{name}: ")
    assert message.endswith(f"(given '{value}')")
    assert message.count(name) == 1 and message.count("given") == 1
    assert start_up_error(environ) == message


def test_port_must_be_a_number(complete):
    expected = "POSTGRES_PORT must be a port number (given 'pg')"
    assert start_up_error({**complete, "POSTGRES_PORT": "pg"}) == expected


def test_given_value_cannot_break_the_line(complete):
    message = start_up_error({**complete, "JWT_EXPIRE_SECONDS": "1\n2"})
    assert message.startswith("JWT_EXPIRE_SECONDS: ")


def test_unknown_backend_lists_the_installed_ones(complete):
    installed = sorted(available_backends(load_plugins()))
    assert "local" in installed
    message = start_up_error({**complete, "FRACTAL_RUNNER_BACKEND": "kubernetes"})
    assert message == (
        "FRACTAL_RUNNER_BACKEND=kubernetes but no installed plugin provides it "
        f"(installed backends: {', '.join(installed)}); install the plugin that provides it "
        "(the README's Deployment section lists the backend packages)."
    )


# --------------------------------------------------------------------------
# Interpreters for task collection


def test_without_default_version_only_the_own_interpreter_is_kept(config_log):
    given = {key: f"/opt/python{version}/bin/python" for version, key in PYTHON_KEYS.items()}
    settings = settings_from(given)
    assert settings.FRACTAL_TASKS_PYTHON_DEFAULT_VERSION == OWN_VERSION
    assert getattr(settings, OWN_KEY) == sys.executable  # even though another was given
    for version in OTHER_VERSIONS:
        assert getattr(settings, PYTHON_KEYS[version]) is None
    infos = messages(config_log, logging.INFO)
    for version in OTHER_VERSIONS:
        key = PYTHON_KEYS[version]
        assert any(key in line and given[key] in line for line in infos), infos


def test_with_default_version_interpreters_are_kept(config_log):
    given = {
        "FRACTAL_TASKS_PYTHON_DEFAULT_VERSION": "3.10",
        "FRACTAL_TASKS_PYTHON_3_10": "/opt/python3.10/bin/python",
        "FRACTAL_TASKS_PYTHON_3_12": "/opt/python3.12/bin/python",
    }
    settings = settings_from(given)
    assert settings.FRACTAL_TASKS_PYTHON_DEFAULT_VERSION == "3.10"
    assert settings.FRACTAL_TASKS_PYTHON_3_10 == "/opt/python3.10/bin/python"
    assert settings.FRACTAL_TASKS_PYTHON_3_12 == "/opt/python3.12/bin/python"
    assert settings.FRACTAL_TASKS_PYTHON_3_9 is None
    assert settings.FRACTAL_TASKS_PYTHON_3_11 is None
    assert messages(config_log, logging.INFO) == []


def test_default_version_equal_to_own_keeps_the_given_interpreter():
    settings = settings_from({
        "FRACTAL_TASKS_PYTHON_DEFAULT_VERSION": OWN_VERSION,
        OWN_KEY: "/opt/elsewhere/bin/python",
    })
    assert getattr(settings, OWN_KEY) == "/opt/elsewhere/bin/python"


# --------------------------------------------------------------------------
# Paths, lax parsing, defaults


def test_relative_folders_become_absolute_with_a_warning(tmp_path, monkeypatch, config_log):
    monkeypatch.chdir(tmp_path)
    settings = settings_from({"FRACTAL_TASKS_DIR": "tasks",
                              "FRACTAL_RUNNER_WORKING_BASE_DIR": "../jobs"})
    tasks = (tmp_path / "tasks").resolve()
    jobs = (tmp_path.parent / "jobs").resolve()
    assert settings.FRACTAL_TASKS_DIR == tasks
    assert settings.FRACTAL_RUNNER_WORKING_BASE_DIR == jobs
    warnings = messages(config_log, logging.WARNING)
    assert len(warnings) == 2
    [tasks_warning] = [line for line in warnings if line.startswith("FRACTAL_TASKS_DIR=")]
    assert '"tasks"' in tasks_warning and str(tasks) in tasks_warning
    [jobs_warning] = [line for line in warnings
                      if line.startswith("FRACTAL_RUNNER_WORKING_BASE_DIR=")]
    assert '"../jobs"' in jobs_warning and str(jobs) in jobs_warning


def test_a_relative_known_hosts_file_becomes_absolute(tmp_path, monkeypatch, config_log):
    monkeypatch.chdir(tmp_path)
    settings = settings_from({"FRACTAL_SSH_KNOWN_HOSTS_FILE": "ssh/known_hosts"})
    assert settings.FRACTAL_SSH_KNOWN_HOSTS_FILE == tmp_path.resolve() / "ssh" / "known_hosts"
    [warning] = messages(config_log, logging.WARNING)
    assert warning.startswith('FRACTAL_SSH_KNOWN_HOSTS_FILE="ssh/known_hosts" is not an absolute path')


def test_absolute_folders_are_kept_silently(tmp_path, config_log):
    settings = settings_from({"FRACTAL_TASKS_DIR": str(tmp_path / "t"),
                              "FRACTAL_RUNNER_WORKING_BASE_DIR": str(tmp_path / "j")})
    assert settings.FRACTAL_TASKS_DIR == tmp_path / "t"
    assert settings.FRACTAL_RUNNER_WORKING_BASE_DIR == tmp_path / "j"
    assert messages(config_log, logging.WARNING) == []


@pytest.mark.parametrize("value, expected", [
    ("yes", True), ("true", True), ("1", True), ("on", True), ("True", True),
    ("no", False), ("false", False), ("0", False), ("off", False),
])
def test_booleans_are_lax(value, expected):
    assert settings_from({"DB_ECHO": value}).DB_ECHO is expected


@pytest.mark.parametrize("value, expected", [
    ("DEBUG", 10), ("debug", 10), ("INFO", 20), ("WARNING", 30), ("warn", 30),
    ("error", 40), ("CRITICAL", 50), ("10", 10), ("35", 35),
])
def test_logging_level_accepts_names_and_numbers(value, expected):
    assert settings_from({"FRACTAL_LOGGING_LEVEL": value}).FRACTAL_LOGGING_LEVEL == expected


def test_logging_level_reaches_the_server_logger(complete):
    create_app(environ={**complete, "FRACTAL_LOGGING_LEVEL": "ERROR"})
    assert logging.getLogger("fractal_server").level == logging.ERROR
    create_app(environ={**complete, "FRACTAL_LOGGING_LEVEL": "debug"})
    assert logging.getLogger("fractal_server").level == logging.DEBUG
    create_app(environ=complete)
    assert logging.getLogger("fractal_server").level == logging.INFO


def test_logging_level_reaches_the_plugins_loggers(complete):
    """A plugin logs under its own package (here the local backend's), not under `fractal_server`."""
    create_app(environ={**complete, "FRACTAL_LOGGING_LEVEL": "debug"})
    plugin_logger = logging.getLogger("fractal_server_local_backend.runner")
    assert plugin_logger.isEnabledFor(logging.DEBUG)
    assert any(getattr(h, "fractal_console", False) for h in logging.getLogger("fractal_server_local_backend").handlers)
    create_app(environ=complete)
    assert not plugin_logger.isEnabledFor(logging.DEBUG)


def test_defaults_of_every_variable():
    expected = {
        "PROJECT_NAME": "Fractal Server",
        "PROJECT_VERSION": "2.9.2",
        "JWT_SECRET_KEY": None,
        "JWT_EXPIRE_SECONDS": 180,
        "COOKIE_EXPIRE_SECONDS": 86400,
        "OAUTH_CLIENTS_CONFIG": [],
        "DB_ECHO": False,
        "POSTGRES_USER": None,
        "POSTGRES_PASSWORD": None,
        "POSTGRES_HOST": "localhost",
        "POSTGRES_PORT": "5432",
        "POSTGRES_DB": None,
        "FRACTAL_DEFAULT_ADMIN_EMAIL": "admin@fractal.xy",
        "FRACTAL_DEFAULT_ADMIN_PASSWORD": "1234",
        "FRACTAL_DEFAULT_ADMIN_USERNAME": "admin",
        "FRACTAL_TASKS_DIR": None,
        "FRACTAL_RUNNER_BACKEND": "local",
        "FRACTAL_RUNNER_WORKING_BASE_DIR": None,
        "FRACTAL_LOGGING_LEVEL": 20,
        "FRACTAL_LOCAL_CONFIG_FILE": None,
        "FRACTAL_API_MAX_JOB_LIST_LENGTH": 50,
        "FRACTAL_GRACEFUL_SHUTDOWN_TIME": 30,
        "FRACTAL_MAX_REQUEST_BODY_BYTES": 256 * 1024 * 1024,
        "FRACTAL_SLURM_CONFIG_FILE": None,
        "FRACTAL_SLURM_WORKER_PYTHON": None,
        "FRACTAL_TASKS_PYTHON_DEFAULT_VERSION": OWN_VERSION,
        **{key: (sys.executable if key == OWN_KEY else None) for key in PYTHON_KEYS.values()},
        "FRACTAL_SLURM_POLL_INTERVAL": 5,
        "FRACTAL_SLURM_SBATCH_SLEEP": 0,
        "FRACTAL_SLURM_ERROR_HANDLING_INTERVAL": 5,
        "FRACTAL_SLURM_OUTAGE_LIMIT": 600,
        "FRACTAL_SSH_KNOWN_HOSTS_FILE": None,
        "FRACTAL_API_SUBMIT_RATE_LIMIT": 2,
        "FRACTAL_RUNNER_TASKS_INCLUDE_IMAGE": (
            "Copy OME-Zarr structure;Convert Metadata Components from 2D to 3D"
        ),
        "FRACTAL_API_V1_MODE": "include",
        "FRACTAL_MAX_PIP_VERSION": "24.0",
        "FRACTAL_VIEWER_AUTHORIZATION_SCHEME": "none",
        "FRACTAL_VIEWER_BASE_FOLDER": None,
    }
    assert settings_from({}).model_dump() == expected


def test_given_values_are_parsed(tmp_path):
    settings = settings_from({
        "JWT_EXPIRE_SECONDS": "60",
        "COOKIE_EXPIRE_SECONDS": "3600",
        "POSTGRES_PORT": "6543",
        "FRACTAL_SLURM_SBATCH_SLEEP": "0.5",
        "FRACTAL_LOCAL_CONFIG_FILE": str(tmp_path / "local.json"),
        "FRACTAL_API_V1_MODE": "exclude",
        "FRACTAL_RUNNER_BACKEND": "slurm_ssh",
    })
    assert settings.JWT_EXPIRE_SECONDS == 60
    assert settings.COOKIE_EXPIRE_SECONDS == 3600
    assert settings.POSTGRES_PORT == "6543"
    assert settings.FRACTAL_SLURM_SBATCH_SLEEP == 0.5
    assert settings.FRACTAL_LOCAL_CONFIG_FILE == tmp_path / "local.json"
    assert settings.FRACTAL_API_V1_MODE == "exclude"
    assert settings.FRACTAL_RUNNER_BACKEND == "slurm_ssh"


def test_names_are_case_sensitive_and_unknown_names_ignored():
    settings = settings_from({"jwt_secret_key": "s", "Jwt_Expire_Seconds": "1",
                              "FRACTAL_NO_SUCH_SETTING": "x"})
    assert settings.JWT_SECRET_KEY is None
    assert settings.JWT_EXPIRE_SECONDS == 180


# --------------------------------------------------------------------------
# OAuth clients and the sanitized view


def test_oauth_clients_are_collected_by_name():
    settings = settings_from({
        "OAUTH_FOO_CLIENT_ID": "foo-id",
        "OAUTH_FOO_CLIENT_SECRET": "foo-secret",
        "OAUTH_FOO_OIDC_CONFIGURATION_ENDPOINT": OIDC,
        "OAUTH_FOO_REDIRECT_URL": "https://fractal.example.org/auth/foo/callback/",
        "OAUTH_GITHUB_CLIENT_ID": "gh-id",
        "OAUTH_GITHUB_CLIENT_SECRET": "gh-secret",
    })
    clients = {client.CLIENT_NAME: client.model_dump() for client in settings.OAUTH_CLIENTS_CONFIG}
    assert clients == {
        "FOO": {
            "CLIENT_NAME": "FOO",
            "CLIENT_ID": "foo-id",
            "CLIENT_SECRET": "foo-secret",
            "OIDC_CONFIGURATION_ENDPOINT": OIDC,
            "REDIRECT_URL": "https://fractal.example.org/auth/foo/callback/",
        },
        "GITHUB": {
            "CLIENT_NAME": "GITHUB",
            "CLIENT_ID": "gh-id",
            "CLIENT_SECRET": "gh-secret",
            "OIDC_CONFIGURATION_ENDPOINT": None,
            "REDIRECT_URL": None,
        },
    }


def test_sanitized_settings_mask_non_fractal_and_secret_names(complete):
    settings = settings_from({
        **complete,
        "POSTGRES_PASSWORD": "pg-password",
        "FRACTAL_DEFAULT_ADMIN_PASSWORD": "admin-password",
        "OAUTH_GITHUB_CLIENT_ID": "gh-id",
        "OAUTH_GITHUB_CLIENT_SECRET": "gh-secret",
    })
    sanitized = settings.get_sanitized()
    assert set(sanitized) == set(Settings.model_fields)
    for key, value in sanitized.items():
        if not key.startswith("FRACTAL") or "PASSWORD" in key:
            assert value == "***", key
        else:
            assert value != "***", key
    assert sanitized["FRACTAL_TASKS_DIR"] == complete["FRACTAL_TASKS_DIR"]
    assert sanitized["FRACTAL_DEFAULT_ADMIN_EMAIL"] == "admin@fractal.xy"
    assert sanitized["FRACTAL_LOGGING_LEVEL"] == 20
    text = json.dumps(sanitized)  # served as JSON by /api/settings/
    for secret in ("a-secret", "pg-password", "admin-password", "gh-secret", "fractal_never_used"):
        assert secret not in text


def test_sanitizing_masks_every_secret_word():
    class WithMoreFields(Settings):
        FRACTAL_SSH_PWD: str = "pwd"
        FRACTAL_API_TOKEN: str = "token"
        FRACTAL_CLIENT_SECRET: str = "secret"
        FRACTAL_db_password: str = "password"
        fractal_lower_case: str = "shown"

    sanitized = WithMoreFields().get_sanitized()
    for key in ("FRACTAL_SSH_PWD", "FRACTAL_API_TOKEN", "FRACTAL_CLIENT_SECRET",
                "FRACTAL_db_password"):
        assert sanitized[key] == "***", key
    assert sanitized["fractal_lower_case"] == "shown"


# --------------------------------------------------------------------------
# The `.fractal_server.env` file


def test_env_file_is_read_and_environment_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ENV_FILE).write_text(
        "# a comment\n"
        "JWT_SECRET_KEY=from-file\n"
        "POSTGRES_DB=file_db\n"
        "FRACTAL_API_V1_MODE='exclude'\n"
    )
    for key in ("JWT_SECRET_KEY", "FRACTAL_API_V1_MODE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("POSTGRES_DB", "env_db")
    settings = settings_from(read_environment())
    assert settings.JWT_SECRET_KEY == "from-file"
    assert settings.FRACTAL_API_V1_MODE == "exclude"
    assert settings.POSTGRES_DB == "env_db"


def test_env_file_only_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / ENV_FILE).write_text("JWT_SECRET_KEY=from-file\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("JWT_SECRET_KEY", raising=False)
    environ = read_environment()  # no file here: not an error
    assert "JWT_SECRET_KEY" not in environ
    assert environ["PATH"] == os.environ["PATH"]


def test_create_app_reads_the_env_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in ("JWT_SECRET_KEY", "FRACTAL_TASKS_DIR", "POSTGRES_DB",
                "FRACTAL_RUNNER_WORKING_BASE_DIR", "FRACTAL_RUNNER_BACKEND"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / ENV_FILE).write_text(
        "JWT_SECRET_KEY=s\nPOSTGRES_DB=d\n"
        f"FRACTAL_TASKS_DIR={tmp_path}/t\nFRACTAL_RUNNER_WORKING_BASE_DIR={tmp_path}/j\n"
    )
    assert create_app().extensions["fractal"].settings.JWT_SECRET_KEY == "s"


# --------------------------------------------------------------------------
# Embedded defaults (development mode)


def _secret_files(data_dir: Path, secret: str) -> list[Path]:
    return [path for path in data_dir.iterdir()
            if path.is_file() and path.read_text().strip() == secret]


def test_embedded_defaults_fill_the_data_folder(tmp_path):
    data_dir = tmp_path / "data"
    settings, filled = fill_embedded_defaults(settings_from({}), data_dir)
    assert filled == ["FRACTAL_RUNNER_WORKING_BASE_DIR", "FRACTAL_TASKS_DIR", "JWT_SECRET_KEY"]
    assert settings.FRACTAL_TASKS_DIR == data_dir / "tasks"
    assert settings.FRACTAL_RUNNER_WORKING_BASE_DIR == data_dir / "jobs"
    secret = settings.JWT_SECRET_KEY
    assert len(secret) >= 32
    [secret_file] = _secret_files(data_dir, secret)
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    settings.check(require_database=False)

    again, _ = fill_embedded_defaults(settings_from({}), data_dir)
    assert again.JWT_SECRET_KEY == secret
    other, _ = fill_embedded_defaults(settings_from({}), tmp_path / "other")
    assert other.JWT_SECRET_KEY != secret


def test_embedded_defaults_use_an_absolute_data_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings, _ = fill_embedded_defaults(settings_from({}), Path("data"))
    assert settings.FRACTAL_TASKS_DIR == (tmp_path / "data" / "tasks").resolve()
    assert settings.FRACTAL_TASKS_DIR.is_absolute()


def test_embedded_secret_survives_a_restrictive_umask(tmp_path):
    previous = os.umask(0o277)  # would leave the owner without write permission
    try:
        settings, _ = fill_embedded_defaults(settings_from({}), tmp_path / "data")
    finally:
        os.umask(previous)
    [secret_file] = _secret_files(tmp_path / "data", settings.JWT_SECRET_KEY)
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600


def test_empty_secret_file_gets_a_new_secret(tmp_path):
    data_dir = tmp_path / "data"
    first, _ = fill_embedded_defaults(settings_from({}), data_dir)
    [secret_file] = _secret_files(data_dir, first.JWT_SECRET_KEY)
    secret_file.write_text("")
    second, _ = fill_embedded_defaults(settings_from({}), data_dir)
    assert second.JWT_SECRET_KEY and second.JWT_SECRET_KEY != first.JWT_SECRET_KEY
    assert secret_file.read_text().strip() == second.JWT_SECRET_KEY
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600


def test_embedded_defaults_override_nothing(complete, tmp_path):
    configured = settings_from(complete)
    data_dir = tmp_path / "data"
    settings, filled = fill_embedded_defaults(configured, data_dir)
    assert filled == []
    assert settings.model_dump() == configured.model_dump()
    assert list(data_dir.iterdir()) == []  # no secret generated


def test_dev_mode_starts_without_configuration_but_not_with_a_wrong_one(tmp_path):
    app = create_app(dev=True, data_dir=tmp_path / "data", environ={})
    state = app.extensions["fractal"]
    assert state.uses_embedded_database
    assert state.settings.FRACTAL_TASKS_DIR == tmp_path / "data" / "tasks"
    assert str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith(f"sqlite:///{tmp_path}/data/")
    with pytest.raises(FractalConfigurationError, match="^JWT_EXPIRE_SECONDS: "):
        create_app(dev=True, data_dir=tmp_path / "data", environ={"JWT_EXPIRE_SECONDS": "abc"})


# --------------------------------------------------------------------------
# End to end: `fractalctl start` with a broken configuration


def _fractalctl_start(cwd: Path, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), **extra_env}
    return subprocess.run([str(FRACTALCTL), "start", "--port", "0"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "environment, env_file, expected",
    [
        ({}, "", "JWT_SECRET_KEY cannot be None"),
        ({"JWT_EXPIRE_SECONDS": "abc"}, "",
         "JWT_EXPIRE_SECONDS: Input should be a valid integer, "
         "unable to parse string as an integer (given 'abc')"),
        # From the env file, checked by the local backend plugin.
        ({}, "FRACTAL_LOCAL_CONFIG_FILE=/nonexistent/local.json\n",
         "FRACTAL_RUNNER_BACKEND=local but FRACTAL_LOCAL_CONFIG_FILE="
         "/nonexistent/local.json not found."),
    ],
    ids=["missing", "wrong-type", "env-file"],
)
def test_fractalctl_start_prints_one_line(tmp_path, complete, environment, env_file, expected):
    base = {} if not environment and not env_file else complete
    (tmp_path / ENV_FILE).write_text(env_file)
    result = _fractalctl_start(tmp_path, {**base, **environment})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith(expected)
