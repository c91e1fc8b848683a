"""Who is calling: users, their passwords, and the administrator created on first start."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import sys
from pathlib import Path

import sqlalchemy as sa

from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from dockyard.iam.authz import Principal
from dockyard.iam.passwords import generate_password, hash_password, verify_password

log = logging.getLogger(__name__)
ADMIN = "admin"


class IdentityService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def authenticate(self, username: str, password: str) -> Principal | None:
        """The principal these credentials belong to, or None when they are wrong."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(
                    t.users.c.id,
                    t.users.c.name,
                    t.users.c.account_id,
                    t.users.c.password_hash,
                    t.users.c.is_admin,
                ).where(t.users.c.name == username)
            ).first()
        if row is None or not verify_password(row.password_hash, password):
            return None
        return Principal(
            "user", row.name, user_id=row.id, account_id=row.account_id, is_admin=row.is_admin
        )

    def principal_by_name(self, username: str) -> Principal | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(
                    t.users.c.id, t.users.c.name, t.users.c.account_id, t.users.c.is_admin
                ).where(t.users.c.name == username)
            ).first()
        if row is None:
            return None
        return Principal(
            "user", row.name, user_id=row.id, account_id=row.account_id, is_admin=row.is_admin
        )

    def ensure_admin(self, data_dir: Path, password: str = "") -> str | None:
        """Create ``admin`` on first start; return the password when one was generated."""
        with self.db.write() as conn:
            exists = conn.execute(sa.select(t.users.c.id).where(t.users.c.name == ADMIN)).first()
            if exists is not None:
                return None
            generated = not password
            password = password or generate_password()
            conn.execute(
                sa.insert(t.users).values(
                    name=ADMIN,
                    account_id=None,
                    password_hash=hash_password(password),
                    is_admin=True,
                    created_at=utcnow(),
                )
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / "admin-password"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        os.chmod(path, 0o600)
        if generated:
            # Printed once, on purpose: this is the only time the password is shown.
            sys.stderr.write(
                f"Created the instance administrator 'admin' with password: {password}\n"
                f"(also written to {path}, mode 0600)\n"
            )
            return password
        log.info("created the instance administrator 'admin'")
        return None


def parse_basic(header: str) -> tuple[str, str] | None:
    """``Basic base64(user:pass)`` → (user, pass); None when it is not Basic."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return user, password
