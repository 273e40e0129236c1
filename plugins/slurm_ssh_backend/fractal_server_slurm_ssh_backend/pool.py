"""The SSH connections of the server process: one per target, shared by jobs and task collection."""
import atexit
import os
import threading

from fractal_server_slurm_ssh_backend.address import parse_ssh_host
from fractal_server_slurm_ssh_backend.connection import SSHConnection, SSHTarget

_connections: dict[SSHTarget, SSHConnection] = {}
_lock = threading.Lock()


def known_hosts_file(settings) -> str:
    """FRACTAL_SSH_KNOWN_HOSTS_FILE, else the server account's `~/.ssh/known_hosts`."""
    return str(settings.FRACTAL_SSH_KNOWN_HOSTS_FILE or os.path.expanduser("~/.ssh/known_hosts"))


def target_of(settings, user_settings) -> SSHTarget:
    """Where a user's SSH settings lead, with the server's known-hosts file."""
    host, port = parse_ssh_host(user_settings.ssh_host)
    return SSHTarget(
        host=host,
        port=port,
        user=user_settings.ssh_username,
        key_path=user_settings.ssh_private_key_path,
        known_hosts=known_hosts_file(settings),
    )


def shared_connection(target: SSHTarget) -> SSHConnection:
    """The process's connection to `target` (created, not yet opened, on first request)."""
    with _lock:
        connection = _connections.get(target)
        if connection is None:
            connection = _connections[target] = SSHConnection(target)
        return connection


@atexit.register
def close_all() -> None:
    with _lock:
        connections = list(_connections.values())
        _connections.clear()
    for connection in connections:
        connection.close()
