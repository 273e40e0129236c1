"""SSH connections against the real loopback sshd: commands, files, host keys, outages."""
import subprocess
import threading

import pytest
from fractal_server_slurm_ssh_backend.connection import (
    HostKeyRefused,
    RemoteCommandFailed,
    RetryPolicy,
    SSHConnection,
    SSHError,
    SSHUnreachable,
)

from .remote import ADDRESS, KNOWN_HOSTS, PORT, REMOTE_USER, as_root, sshd

SHORT_RETRIES = RetryPolicy(waits=(0.2, 0.2))


def new_key(folder, name="key") -> str:
    path = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return str(path)


# --- commands ---


def test_a_command_runs_as_the_remote_user_with_its_arguments_quoted(connection):
    assert connection.run(["id", "-un"]).stdout == f"{REMOTE_USER}\n"
    tricky = "a  b; echo injected $(id) `id` 'q' \"d\" *"
    result = connection.run(["printf", "%s|", tricky, ""])
    assert result.stdout == f"{tricky}||"
    assert result.args == ["printf", "%s|", tricky, ""]


def test_exit_status_and_both_outputs(connection):
    script = "echo out; echo err >&2; exit 3"
    result = connection.run(["sh", "-c", script], check=False)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    with pytest.raises(RemoteCommandFailed) as error:
        connection.run(["sh", "-c", script])
    assert f"{REMOTE_USER}@{ADDRESS}:{PORT}" in str(error.value)
    assert "exit status 3: err" in str(error.value)
    assert error.value.result.returncode == 3


def test_large_output_is_read_whole(connection):
    result = connection.run(["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; head -c 200000 /dev/zero >&2"])
    assert (len(result.stdout), set(result.stdout), len(result.stderr)) == (3000000, {"x"}, 200000)


def test_a_command_that_overruns_its_timeout_raises(connection):
    with pytest.raises(SSHError, match=r"`sleep 30` did not end within 0.5 s") as error:
        connection.run(["sleep", "30"], timeout=0.5)
    assert not isinstance(error.value, SSHUnreachable)
    assert connection.run(["true"]).returncode == 0  # the connection is still usable


def test_commands_of_several_threads_share_the_connection(connection):
    results = {}

    def run(number):
        results[number] = connection.run(["sh", "-c", f"sleep 0.3; echo {number}"]).stdout

    threads = [threading.Thread(target=run, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: f"{n}\n" for n in range(6)}


# --- files ---


def test_folders_and_files(connection, remote_dir, tmp_path):
    folder = f"{remote_dir}/a/b"
    assert not connection.exists(remote_dir)
    connection.make_dirs(folder)
    assert connection.is_dir(folder) and connection.exists(folder)
    connection.write_text(f"{folder}/small.txt", "héllo\n")
    assert connection.read_text(f"{folder}/small.txt") == "héllo\n"
    assert connection.exists(f"{folder}/small.txt") and not connection.is_dir(f"{folder}/small.txt")

    local = tmp_path / "data.bin"
    local.write_bytes(bytes(range(256)) * 4000)
    connection.put_file(local, f"{folder}/data.bin")
    seen_by_root = as_root(["stat", "-c", "%U %s", f"{folder}/data.bin"]).stdout.split()
    assert seen_by_root == [REMOTE_USER, str(256 * 4000)]
    back = tmp_path / "back.bin"
    connection.get_file(f"{folder}/data.bin", back)
    assert back.read_bytes() == local.read_bytes()

    connection.remove_folder(remote_dir)
    assert not connection.exists(remote_dir)


def test_a_missing_remote_file_raises_at_once_and_names_it(connection, remote_dir):
    with pytest.raises(SSHError, match=f"cannot read {remote_dir}/nothing") as error:
        connection.read_text(f"{remote_dir}/nothing")
    assert not isinstance(error.value, SSHUnreachable)


# --- who we trust ---


def test_an_unknown_host_key_is_refused(target, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    entry = KNOWN_HOSTS.read_text().split(" ", 1)[1]
    known_hosts.write_text(f"[{ADDRESS}]:{PORT + 1} {entry}")
    connection = SSHConnection(target.__class__(**{**target.__dict__, "known_hosts": str(known_hosts)}))
    with pytest.raises(HostKeyRefused) as error:
        connection.run(["true"])
    message = str(error.value)
    assert f"The SSH host key of {ADDRESS}:{PORT} (ssh-ed25519 SHA256:" in message
    assert f"is not in the known-hosts file {known_hosts} (as [{ADDRESS}]:{PORT})" in message
    assert known_hosts.read_text() == f"[{ADDRESS}]:{PORT + 1} {entry}"  # nothing added


def test_a_changed_host_key_is_refused(target, tmp_path):
    impostor = new_key(tmp_path)
    known_hosts = tmp_path / "known_hosts"
    public = open(f"{impostor}.pub").read().split()
    known_hosts.write_text(f"[{ADDRESS}]:{PORT} {public[0]} {public[1]}\n")
    connection = SSHConnection(target.__class__(**{**target.__dict__, "known_hosts": str(known_hosts)}))
    with pytest.raises(HostKeyRefused, match=rf"The SSH host key of {ADDRESS}:{PORT} .* differs from the one in"):
        connection.run(["true"])


def test_a_missing_known_hosts_file_is_an_error_that_names_it(target, tmp_path):
    missing = tmp_path / "nowhere" / "known_hosts"
    connection = SSHConnection(target.__class__(**{**target.__dict__, "known_hosts": str(missing)}))
    with pytest.raises(SSHError, match=f"Cannot read the known-hosts file {missing} for {REMOTE_USER}@"):
        connection.run(["true"])


def test_only_the_given_key_is_offered(target, tmp_path):
    stranger = new_key(tmp_path)
    connection = SSHConnection(target.__class__(**{**target.__dict__, "key_path": stranger}))
    with pytest.raises(SSHError, match=f"{REMOTE_USER}@{ADDRESS}:{PORT} refused the key {stranger}") as error:
        connection.run(["true"])
    assert not isinstance(error.value, SSHUnreachable)


# --- outages ---


def test_a_connection_dropped_by_an_sshd_restart_is_reopened(connection, restart_sshd_at_the_end, tmp_path):
    assert connection.run(["id", "-un"]).returncode == 0
    sshd("stop")
    sshd("start")
    assert connection.run(["id", "-un"]).stdout == f"{REMOTE_USER}\n"
    connection.write_text("/tmp/fractal-ssh-test-restart.txt", "again")
    assert connection.read_text("/tmp/fractal-ssh-test-restart.txt") == "again"
    connection.run(["rm", "/tmp/fractal-ssh-test-restart.txt"])


def test_a_short_outage_is_ridden_out(connection, restart_sshd_at_the_end):
    assert connection.run(["true"]).returncode == 0
    sshd("stop")
    outcome = {}

    def run_during_the_outage():
        try:
            outcome["stdout"] = connection.run(["echo", "made it"]).stdout
        except Exception as error:  # reported below
            outcome["error"] = error

    thread = threading.Thread(target=run_during_the_outage)
    thread.start()  # the sshd is down: its first attempts fail
    sshd("start")
    thread.join(timeout=120)
    assert outcome == {"stdout": "made it\n"}


def test_a_longer_outage_fails_with_the_host_and_the_reason(target, restart_sshd_at_the_end, tmp_path):
    connection = SSHConnection(target, retry=SHORT_RETRIES)
    assert connection.run(["true"]).returncode == 0
    sshd("stop")
    with pytest.raises(SSHUnreachable) as error:
        connection.run(["true"])
    message = str(error.value)
    assert message.startswith(f"Cannot reach {REMOTE_USER}@{ADDRESS}:{PORT} to run true (3 attempts over 0.4 s)")
    assert f"Unable to connect to port {PORT} on {ADDRESS}" in message
    with pytest.raises(SSHUnreachable, match=f"Cannot reach {REMOTE_USER}@{ADDRESS}:{PORT} to read /etc/hostname"):
        connection.read_text("/etc/hostname")
    sshd("start")
    assert connection.run(["echo", "back"]).stdout == "back\n"
