"""`ssh_host` with or without a port, and the targets of user settings."""
import re
from types import SimpleNamespace

import pytest
from fractal_server.runner.backend import UserSettingsError
from fractal_server_slurm_ssh_backend.address import parse_ssh_host
from fractal_server_slurm_ssh_backend.connection import SSHTarget
from fractal_server_slurm_ssh_backend.plugin import check_ssh_user_settings
from fractal_server_slurm_ssh_backend.pool import shared_connection, target_of


@pytest.mark.parametrize(
    "value, expected",
    [
        ("login.example.org", ("login.example.org", 22)),
        ("login.example.org:2222", ("login.example.org", 2222)),
        ("10.0.0.7:22", ("10.0.0.7", 22)),
        ("[fe80::1]:2200", ("fe80::1", 2200)),
        ("[fe80::1]", ("fe80::1", 22)),
        ("fe80::1", ("fe80::1", 22)),
        (" host ", ("host", 22)),
    ],
)
def test_host_and_port(value, expected):
    assert parse_ssh_host(value) == expected


@pytest.mark.parametrize(
    "value, problem",
    [
        ("host:", "the port must be a number"),
        ("host:ssh", "the port must be a number"),
        ("host:0", "the port must be a number"),
        ("host:65536", "the port must be a number"),
        (":22", "no host name"),
        ("[fe80::1", "expected [address]"),
        ("[fe80::1]x", "expected [address]"),
    ],
)
def test_invalid_hosts(value, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_ssh_host(value)


def user(ssh_host="cluster:2222", key="/keys/alice", jobs_dir="/home/alice/jobs"):
    return SimpleNamespace(ssh_host=ssh_host, ssh_username="alice", ssh_private_key_path=key, ssh_jobs_dir=jobs_dir)


def test_targets_of_user_settings(monkeypatch, tmp_path):
    settings = SimpleNamespace(FRACTAL_SSH_KNOWN_HOSTS_FILE=tmp_path / "known")
    assert target_of(settings, user()) == SSHTarget("cluster", 2222, "alice", "/keys/alice", str(tmp_path / "known"))
    monkeypatch.setenv("HOME", str(tmp_path))
    default = target_of(SimpleNamespace(FRACTAL_SSH_KNOWN_HOSTS_FILE=None), user())
    assert default.known_hosts == f"{tmp_path}/.ssh/known_hosts"


def test_one_connection_per_host_port_user_and_key():
    settings = SimpleNamespace(FRACTAL_SSH_KNOWN_HOSTS_FILE="/known")
    first = shared_connection(target_of(settings, user()))
    assert shared_connection(target_of(settings, user())) is first
    assert shared_connection(target_of(settings, user(ssh_host="cluster:22"))) is not first
    assert shared_connection(target_of(settings, user(key="/keys/other"))) is not first


def test_the_backend_refuses_an_invalid_ssh_host():
    check_ssh_user_settings(user(ssh_host="cluster:2222"))
    with pytest.raises(UserSettingsError, match="Invalid SSH host 'cluster:ssh'"):
        check_ssh_user_settings(user(ssh_host="cluster:ssh"))


@pytest.mark.parametrize("jobs_dir", ["jobs", "/home/alice/../bob", "/home/alice\n#SBATCH --mem=1"])
def test_the_backend_refuses_a_jobs_dir_that_cannot_go_into_a_script(jobs_dir):
    with pytest.raises(UserSettingsError, match="ssh_jobs_dir"):
        check_ssh_user_settings(user(jobs_dir=jobs_dir))
