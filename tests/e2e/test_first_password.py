"""The administrator's first-start password: written (0600, in a 0700 data folder) only
when generated, and retired (no longer accepted anywhere, its file removed) as soon as
the administrator changes either of its passwords."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx

from tests.fixtures.server import DockyardServer, make_server, running_server


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _registry_login(server: DockyardServer, password: str) -> int:
    """What ``docker login`` gets: the token endpoint's status for these credentials."""
    r = httpx.get(
        f"{server.url}/auth/token",
        params={"service": "dockyard", "scope": "repository:library/x:pull"},
        auth=("admin", password),
    )
    return r.status_code


def _console_login(server: DockyardServer, password: str) -> int:
    return httpx.get(f"{server.url}/api/v1/me", auth=("admin", password)).status_code


def _generated(tmp_path: Path) -> tuple[DockyardServer, str, Path]:
    server = make_server(tmp_path, {"DOCKYARD_ADMIN_PASSWORD": ""})
    secret = server.data_dir / "admin-password"
    return server, secret.read_text().strip(), secret


def test_data_folder_and_database_are_private(tmp_path: Path) -> None:
    server, _, secret = _generated(tmp_path)
    assert _mode(server.data_dir) == 0o700
    assert _mode(server.data_dir / "dockyard.db") == 0o600
    assert _mode(secret) == 0o600
    server.start()
    try:
        for wal in server.data_dir.glob("dockyard.db-*"):
            assert _mode(wal) == 0o600, wal
    finally:
        server.stop()


def test_changing_the_console_password_retires_the_first_one(tmp_path: Path) -> None:
    server, first, secret = _generated(tmp_path)
    server.start()
    try:
        assert _registry_login(server, first) == 200
        with server.client(auth=("admin", first)) as admin:
            r = admin.put(
                "/api/v1/me/password",
                json={"current_password": first, "password": "new-console-password"},
            )
            assert r.status_code == 204, r.text
        assert not secret.exists()
        assert _registry_login(server, first) == 401
        assert _console_login(server, first) == 401
        with server.client(auth=("admin", first)) as c:
            assert c.get("/v2/").status_code == 401
        # Until a registry password is set, the console password serves docker login.
        assert _registry_login(server, "new-console-password") == 200
        assert _console_login(server, "new-console-password") == 200
        server.restart()
        assert not secret.exists()
        assert _registry_login(server, first) == 401
    finally:
        server.stop()


def test_setting_the_registry_password_retires_the_first_one(tmp_path: Path) -> None:
    server, first, secret = _generated(tmp_path)
    server.start()
    try:
        with server.client(auth=("admin", first)) as admin:
            r = admin.put("/api/v1/me/registry-password", json={"password": "registry-pw-123"})
            assert r.status_code == 204, r.text
        assert not secret.exists()
        assert _registry_login(server, first) == 401
        with server.client(auth=("admin", first)) as c:
            assert c.get("/v2/").status_code == 401
        assert _registry_login(server, "registry-pw-123") == 200
    finally:
        server.stop()


def test_a_copy_elsewhere_goes_at_the_next_start(tmp_path: Path) -> None:
    """A replica's own copy of the file (another data dir, one database) is removed when
    that replica next starts, once the password it holds no longer works."""
    server, first, secret = _generated(tmp_path)
    server.start()
    try:
        kept = secret.read_bytes()
        with server.client(auth=("admin", first)) as admin:
            r = admin.put(
                "/api/v1/me/password",
                json={"current_password": first, "password": "new-console-password"},
            )
            assert r.status_code == 204, r.text
        secret.write_bytes(kept)
        secret.chmod(0o600)
        server.restart()
        assert not secret.exists()
    finally:
        server.stop()


def test_a_given_password_is_written_nowhere(tmp_path: Path) -> None:
    with running_server(tmp_path, {"DOCKYARD_ADMIN_PASSWORD": "given-password"}) as server:
        assert not (server.data_dir / "admin-password").exists()
        assert _registry_login(server, "given-password") == 200
    assert "given-password" not in "".join(
        p.read_text(errors="replace") for p in server.data_dir.glob("*") if p.is_file()
    )
