"""Secrets encrypted at rest (webhook signing secrets and headers; build credentials
next).

The key lives in the database (``secret_keys``), like the token-signing key, so that
every replica and every worker can read what any of them wrote. Values are Fernet
tokens (AES-128-CBC with an HMAC-SHA256), through :class:`MultiFernet` so that a new
key can be added later while old values stay readable.

``cryptography`` (some 8 MB of a process's memory) is imported by the first value
sealed or opened: a job worker that delivers no signed webhook and runs no build from
a private source never needs it.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from dockyard.db.upsert import upsert

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

_KEY_ID = "fernet-1"


def _new_key() -> str:
    """A Fernet key: 32 random bytes, URL-safe base64 (the format the Fernet
    specification gives, which ``Fernet.generate_key`` makes the same way)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        self._keys = keys
        self._fernet_made: MultiFernet | None = None
        self._lock = threading.Lock()

    @property
    def _fernet(self) -> MultiFernet:
        made = self._fernet_made
        if made is not None:
            return made
        with self._lock:
            if self._fernet_made is None:
                from cryptography.fernet import Fernet, MultiFernet

                self._fernet_made = MultiFernet([Fernet(k) for k in self._keys])
            return self._fernet_made

    @classmethod
    def load_or_create(cls, db: Database) -> SecretBox:
        """The instance's keys; the first start (of any replica) creates one. Look, then
        insert if missing, then read back what won: replicas may start together."""
        with db.read() as conn:
            rows = conn.execute(
                sa.select(t.secret_keys.c.secret).order_by(t.secret_keys.c.created_at.desc())
            ).scalars()
            keys = [k.encode() for k in rows]
        if not keys:
            with db.write() as conn:
                upsert(
                    conn,
                    t.secret_keys,
                    {
                        "id": _KEY_ID,
                        "secret": _new_key(),
                        "created_at": utcnow(),
                    },
                    keys=("id",),
                )
            return cls.load_or_create(db)
        return cls(keys)

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def open(self, token: str) -> str:
        fernet = self._fernet
        from cryptography.fernet import InvalidToken

        try:
            return fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError(
                "a stored secret cannot be decrypted with this instance's keys"
            ) from exc

    def seal_json(self, value: Any) -> str:
        return self.seal(json.dumps(value, separators=(",", ":")))

    def open_json(self, token: str) -> Any:
        return json.loads(self.open(token))
