"""One SSH connection to a remote host, with paramiko: commands and files.

A connection is opened on first use and reopened on the next use after it
dropped. Host keys are checked against a known-hosts file only: an unknown
or changed key is refused (`HostKeyRefused`), never added. Authentication
uses the given private key alone (no agent, no other keys).

Failing to reach the host (refused or timed-out TCP connection, no banner, a
connection that dropped before a command started) is retried with the waits
of `RetryPolicy`; when they are used up, `SSHUnreachable` names the host and
the last reason. Everything else raises at once: a refused host key or key,
a command that exits non-zero (`RemoteCommandFailed`) or overruns its
timeout, a connection lost while a command ran (the command may have had
effects, so it is not repeated). File transfers (SFTP) are repeated after a
dropped connection, since writing or reading a file again does no harm.

Commands run on channels of their own, concurrently: a long `pip install`
does not hold up the polling of a job on the same connection. The lock
serialises opening the connection and the SFTP session (which is not
thread-safe).
"""
import logging
import select
import shlex
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, TypeVar

import paramiko

# paramiko logs its own tracebacks (e.g. for a missing banner); our errors say what happened.
logging.getLogger("paramiko").setLevel(logging.CRITICAL)

T = TypeVar("T")

CONNECT_TIMEOUT = 10.0
"""Seconds for each of: the TCP connection, the SSH banner, authentication, opening a channel."""
COMMAND_TIMEOUT = 600.0
"""Default seconds a remote command may run."""
LOCK_TIMEOUT = 250.0
"""Seconds to wait for the connection's lock before giving up."""
SFTP_TIMEOUT = 300.0
"""Seconds an SFTP request may wait for an answer."""
KEEPALIVE_INTERVAL = 15
"""Seconds between keep-alive messages, so that a dead connection is noticed."""


@dataclass(frozen=True)
class SSHTarget:
    """Where to connect, as whom, and how to trust the host."""

    host: str
    port: int
    user: str
    key_path: str
    known_hosts: str

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True)
class RetryPolicy:
    """Waits (seconds) between attempts to reach the host.

    The default rides out about 30 seconds of outage (sshd restarted, a
    network blip): 6 attempts, 1 + 2 + 4 + 8 + 15 s apart. If the host does
    not even refuse connections, each attempt may also take up to
    `CONNECT_TIMEOUT`.
    """

    waits: tuple[float, ...] = (1, 2, 4, 8, 15)

    def describe(self) -> str:
        return f"{len(self.waits) + 1} attempts over {sum(self.waits):g} s"


class SSHError(Exception):
    """Something went wrong on an SSH connection; the message names the host."""


class SSHUnreachable(SSHError):
    """The host could not be reached, even after retries."""


class HostKeyRefused(SSHError):
    """The host's key is not in the known-hosts file, or differs from it."""


class RemoteCommandFailed(SSHError):
    """A remote command exited with a non-zero status."""

    def __init__(self, message: str, result: subprocess.CompletedProcess):
        super().__init__(message)
        self.result = result


class _RefuseUnknownHost(paramiko.MissingHostKeyPolicy):
    def __init__(self, target: SSHTarget):
        self.target = target

    def missing_host_key(self, client, hostname, key):
        raise HostKeyRefused(
            f"The SSH host key of {self.target.host}:{self.target.port} ({key.get_name()} {key.fingerprint}) "
            f"is not in the known-hosts file {self.target.known_hosts} (as {hostname}): connection refused. "
            "Check the key and add it to that file."
        )


class _Sender(threading.Thread):
    """Writes a command's stdin, then end of file, while its output is read (a
    command may write before it has read all of its input)."""

    def __init__(self, channel: paramiko.Channel, data: bytes):
        super().__init__(daemon=True)
        self.channel = channel
        self.data = data
        self.error: Optional[Exception] = None
        self.start()

    def run(self) -> None:
        try:
            if self.data:
                self.channel.sendall(self.data)
            self.channel.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException) as error:
            self.error = error


class SSHConnection:
    """A connection to `target`, shared by the threads of the server process (see `pool`)."""

    def __init__(
        self,
        target: SSHTarget,
        retry: RetryPolicy = RetryPolicy(),
        connect_timeout: float = CONNECT_TIMEOUT,
        lock_timeout: float = LOCK_TIMEOUT,
    ):
        self.target = target
        self.retry = retry
        self.connect_timeout = connect_timeout
        self.lock_timeout = lock_timeout
        self._lock = threading.RLock()
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    # --- commands ---

    def run(
        self,
        argv: list[str],
        *,
        timeout: float = COMMAND_TIMEOUT,
        check: bool = True,
        stdin: Optional[bytes] = None,
        text: bool = True,
    ) -> subprocess.CompletedProcess:
        """Run `argv` (each argument quoted) in the remote user's login shell.

        Returns the exit status and output (str, or bytes if not `text`); with
        `check`, a non-zero exit status raises `RemoteCommandFailed`. `stdin`
        is sent to the command, then end of file.
        """
        command = shlex.join(argv)
        channel = self._retrying(lambda: self._start(command), f"run {argv[0]}")
        sender = _Sender(channel, stdin if stdin is not None else b"")
        try:
            returncode, stdout, stderr = self._finish(channel, command, timeout)
        finally:
            channel.close()
            sender.join()
        if sender.error is not None and returncode == 0:
            raise SSHError(f"On {self.target}, sending input to `{command}` failed: {sender.error}")
        if text:
            stdout = stdout.decode(errors="replace")
        result = subprocess.CompletedProcess(argv, returncode, stdout, stderr.decode(errors="replace"))
        if check and returncode != 0:
            raise RemoteCommandFailed(
                f"On {self.target}, `{command}` failed with exit status {returncode}: {result.stderr.strip()}", result
            )
        return result

    def _start(self, command: str) -> paramiko.Channel:
        channel = self._transport().open_session(timeout=self.connect_timeout)
        channel.exec_command(command)
        return channel

    def _finish(self, channel: paramiko.Channel, command: str, timeout: float) -> tuple[int, bytes, bytes]:
        """Read the command's output until it exits, or raise after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        stdout, stderr = bytearray(), bytearray()
        while True:
            if channel.recv_ready():
                stdout += channel.recv(65536)
            elif channel.recv_stderr_ready():
                stderr += channel.recv_stderr(65536)
            elif channel.status_event.is_set() and (channel.eof_received or channel.closed):
                break
            elif channel.closed or not channel.get_transport().is_active():
                raise SSHError(f"The connection to {self.target} was lost while running `{command}`.")
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SSHError(
                        f"On {self.target}, `{command}` did not end within {timeout:g} s; stopped waiting for it."
                    )
                select.select([channel], [], [], min(remaining, 1.0))
        return channel.recv_exit_status(), bytes(stdout), bytes(stderr)

    def make_dirs(self, path: str) -> None:
        self.run(["mkdir", "-p", "--", path])

    def remove_folder(self, path: str) -> None:
        self.run(["rm", "-r", "--", path])

    # --- files ---

    def put_file(self, local: Path, remote: str) -> None:
        self._sftp_call(lambda sftp: sftp.put(str(local), remote), f"upload {local} to {remote}")

    def get_file(self, remote: str, local: Path) -> None:
        self._sftp_call(lambda sftp: sftp.get(remote, str(local)), f"download {remote} to {local}")

    def read_text(self, remote: str) -> str:
        def read(sftp: paramiko.SFTPClient) -> str:
            with sftp.open(remote, "r") as file:
                return file.read().decode()

        return self._sftp_call(read, f"read {remote}")

    def write_text(self, remote: str, text: str) -> None:
        def write(sftp: paramiko.SFTPClient) -> None:
            with sftp.open(remote, "w") as file:
                file.write(text.encode())

        self._sftp_call(write, f"write {remote}")

    def exists(self, remote: str) -> bool:
        def check(sftp: paramiko.SFTPClient) -> bool:
            try:
                sftp.stat(remote)
            except FileNotFoundError:
                return False
            return True

        return self._sftp_call(check, f"look for {remote}")

    def is_dir(self, remote: str) -> bool:
        def check(sftp: paramiko.SFTPClient) -> bool:
            try:
                return stat.S_ISDIR(sftp.stat(remote).st_mode)
            except FileNotFoundError:
                return False

        return self._sftp_call(check, f"look for {remote}")

    def _sftp_call(self, operation: Callable[[paramiko.SFTPClient], T], what: str) -> T:
        def attempt() -> T:
            with self._locked():
                if self._sftp is None:
                    self._sftp = self._transport().open_sftp_client()
                    self._sftp.get_channel().settimeout(SFTP_TIMEOUT)
                return operation(self._sftp)

        return self._retrying(attempt, what)

    # --- the connection itself ---

    def close(self) -> None:
        with self._locked():
            self._reset()

    def _is_active(self) -> bool:
        transport = self._client.get_transport() if self._client is not None else None
        return transport is not None and transport.is_active()

    def _reset(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        if self._client is not None:
            self._client.close()
        self._client = self._sftp = None

    def _transport(self) -> paramiko.Transport:
        """The open connection's transport, connecting first if needed (one attempt)."""
        with self._locked():
            if not self._is_active():
                self._reset()
                self._client = self._connect()
            return self._client.get_transport()

    def _connect(self) -> paramiko.SSHClient:
        target = self.target
        key = self._private_key()
        client = paramiko.SSHClient()
        try:
            client.load_system_host_keys(target.known_hosts)  # read only: never written back
        except OSError as error:
            raise SSHError(f"Cannot read the known-hosts file {target.known_hosts} for {target}: {error}") from None
        client.set_missing_host_key_policy(_RefuseUnknownHost(target))
        try:
            client.connect(
                target.host,
                port=target.port,
                username=target.user,
                pkey=key,
                look_for_keys=False,
                allow_agent=False,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                channel_timeout=self.connect_timeout,
            )
        except paramiko.BadHostKeyException as error:
            client.close()
            raise HostKeyRefused(
                f"The SSH host key of {target.host}:{target.port} ({error.key.get_name()} {error.key.fingerprint}) differs "
                f"from the one in the known-hosts file {target.known_hosts} ({error.expected_key.fingerprint}): "
                "connection refused. The host key changed, or another machine answers in its place."
            ) from None
        except paramiko.AuthenticationException as error:
            client.close()
            raise SSHError(f"{target} refused the key {target.key_path}: {error}") from None
        except BaseException:
            client.close()
            raise
        client.get_transport().set_keepalive(KEEPALIVE_INTERVAL)
        return client

    def _private_key(self) -> paramiko.PKey:
        try:
            return paramiko.PKey.from_path(self.target.key_path)
        except (OSError, paramiko.SSHException) as error:
            raise SSHError(f"Cannot read the SSH private key {self.target.key_path} for {self.target}: {error}") from None

    def _retrying(self, attempt: Callable[[], T], what: str) -> T:
        """`attempt()`, repeated after failures to reach the host, as `retry` says.

        An error on a connection that is still open is not such a failure
        (a missing remote file, a refused channel): it raises at once.
        """
        for wait in (*self.retry.waits, None):
            try:
                return attempt()
            except (OSError, EOFError, paramiko.SSHException) as error:
                reason = str(error) or type(error).__name__
                with self._locked():
                    if self._is_active():
                        raise SSHError(f"On {self.target}, cannot {what}: {reason}") from None
                    self._reset()
            if wait is None:
                raise SSHUnreachable(
                    f"Cannot reach {self.target} to {what} ({self.retry.describe()}); last error: {reason}"
                )
            time.sleep(wait)

    @contextmanager
    def _locked(self):
        if not self._lock.acquire(timeout=self.lock_timeout):
            raise SSHError(f"The connection to {self.target} stayed busy for {self.lock_timeout:g} s.")
        try:
            yield
        finally:
            self._lock.release()
