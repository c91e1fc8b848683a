"""Secrets encrypted at rest (webhook signing secrets and headers; build credentials
next).

The key lives in the database (``secret_keys``), like the token-signing key, so that
every replica and every worker can read what any of them wrote. Values are Fernet
tokens (AES-128-CBC with an HMAC-SHA256), through :class:`MultiFernet` so that a new
key can be added later while old values stay readable.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from dockyard.db.upsert import upsert

_KEY_ID = "fernet-1"


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])

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
                        "secret": Fernet.generate_key().decode(),
                        "created_at": utcnow(),
                    },
                    keys=("id",),
                )
            return cls.load_or_create(db)
        return cls(keys)

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError(
                "a stored secret cannot be decrypted with this instance's keys"
            ) from exc

    def seal_json(self, value: Any) -> str:
        return self.seal(json.dumps(value, separators=(",", ":")))

    def open_json(self, token: str) -> Any:
        return json.loads(self.open(token))
