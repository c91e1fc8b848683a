"""First start on both databases: many processes creating the administrator and the
token signing key at the same moment end up with one of each, and all agree."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from dockyard.db import tables as t
from dockyard.db.engine import Database
from dockyard.iam.identity import IdentityService
from dockyard.iam.tokens import load_or_create_key
from tests.db.conftest import run_concurrently

THREADS = 8
ROUNDS = 20


def test_concurrent_first_starts_create_one_admin(database: Database, tmp_path: Path) -> None:
    identity = IdentityService(database)
    run_concurrently(
        THREADS, lambda i: identity.ensure_admin(tmp_path / str(i), f"password-number-{i}")
    )
    with database.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.accounts)).scalar() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(t.users)).scalar() == 1


def test_concurrent_first_starts_agree_on_the_signing_key(
    database: Database, tmp_path: Path
) -> None:
    # Connections opened beforehand, so that the threads race on the key, not on logins;
    # and many rounds, since one race may happen to run in turn.
    run_concurrently(THREADS, lambda _: database.ping())
    for round_ in range(ROUNDS):
        with database.write() as conn:
            conn.execute(sa.delete(t.signing_keys))
        base = tmp_path / str(round_)
        keys = run_concurrently(
            THREADS, lambda i, base=base: load_or_create_key(database, base / str(i))
        )
        pems = {
            k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            for k in keys
        }
        assert len(pems) == 1, f"round {round_}: {len(pems)} keys"
        with database.read() as conn:
            stored = conn.execute(sa.select(t.signing_keys.c.private_pem)).scalars().all()
        assert [s.encode() for s in stored] == list(pems)
