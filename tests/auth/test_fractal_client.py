"""The real `fractal` command-line client (fractal-client 2.5) against a real server.

The server is `fractalctl start` on a throw-away PostgreSQL database set up
with `fractalctl set-db`, so the client talks to the default admin
(`admin@fractal.xy` / `1234`) over HTTP, exactly as in production.
"""
import requests
from servers import DEFAULT_ADMIN

ADMIN_EMAIL = DEFAULT_ADMIN[0]


def admin_get(server, path: str):
    """GET as the default admin, straight over HTTP."""
    return requests.get(f"{server.url}{path}", headers=server.login(), timeout=10)


def test_whoami_batch_prints_the_user_id(fractal, tmp_path):
    code, out, err = fractal("--batch", "user", "whoami")
    assert (code, out.strip()) == (0, "1"), err
    assert (tmp_path / "cache" / "session").is_file()


def test_whoami_prints_user_and_settings(fractal):
    me = fractal.ok_json("user", "whoami")
    assert me["email"] == ADMIN_EMAIL
    assert (me["is_superuser"], me["is_verified"], me["is_active"]) == (True, True, True)
    assert me["settings"] == {"slurm_user": None, "slurm_accounts": [], "ssh_username": None, "project_dir": None}


def test_whoami_with_wrong_password_fails(fractal):
    code, out, err = fractal("--password", "wrong", "user", "whoami")
    assert code == 1
    assert "LOGIN_BAD_CREDENTIALS" in out


def test_register_creates_a_verified_user(fractal, server):
    new = fractal.ok_json("user", "register", "client-user@example.org", "secret-password")
    assert new["email"] == "client-user@example.org"
    assert (new["is_active"], new["is_superuser"], new["is_verified"]) == (True, False, True)
    assert new["settings"]["slurm_accounts"] == []
    stored = admin_get(server, f"/auth/users/{new['id']}/").json()
    assert stored["is_verified"] is True
    assert stored["group_ids_names"] == [[1, "All"]]
    listed = fractal.ok_json("user", "list")
    assert "client-user@example.org" in [user["email"] for user in listed]


def test_user_list(fractal):
    users = fractal.ok_json("user", "list")
    assert users[0]["id"] == 1 and users[0]["email"] == ADMIN_EMAIL
    assert all(user["group_ids_names"] is None for user in users)


def test_group_list(fractal):
    groups = fractal.ok_json("group", "list", "--user-ids")
    assert groups[0]["name"] == "All" and groups[0]["id"] == 1
    assert 1 in groups[0]["user_ids"]
    code, out, _ = fractal("--batch", "group", "list")
    assert code == 0 and out.split()[0] == "1"
