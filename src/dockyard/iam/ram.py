"""RAM users and policies inside an account.

A RAM user's login is ``name@account``. It has a console password (optional), a separate
registry password for ``docker login``, and the policies attached to it, which decide
what it may do in its own account (``iam.authz``). Policies are the two system policies
(shared by every account) and each account's own custom ones.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from dockyard.db import tables as t
from dockyard.db.engine import Database, as_utc, utcnow
from dockyard.db.upsert import upsert
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.iam.accounts import check_password, store_registry_password
from dockyard.iam.passwords import generate_password, hash_password
from dockyard.iam.policy import Policy, PolicyError, parse_policy

USER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_ACCESS_KEYS = 2
POLICY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True, slots=True)
class RamUser:
    id: int
    name: str
    login: str
    has_registry_password: bool
    policies: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    name: str
    kind: str
    """``system`` or ``custom``."""
    document: dict[str, Any]
    updated_at: datetime


class RamService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- users -----------------------------------------------------------------------

    def create_user(
        self, account_id: int, account_name: str, name: str, password: str | None
    ) -> RamUser:
        if not USER_NAME.fullmatch(name):
            raise Invalid("a RAM user name has 1 to 64 lowercase letters, digits, '.', '_' and '-'")
        if password is not None:
            check_password(password)
        login = f"{name}@{account_name}"
        try:
            with self.db.write() as conn:
                conn.execute(
                    sa.insert(t.users).values(
                        name=login,
                        account_id=account_id,
                        # No console password given: an unguessable one nobody knows.
                        password_hash=hash_password(password or generate_password(32)),
                        is_admin=False,
                        is_root=False,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"user {login!r} already exists") from exc
        return self.get_user(account_id, account_name, name)

    def _user_id(self, conn: Connection, account_id: int, login: str) -> int:
        user_id = conn.execute(
            sa.select(t.users.c.id).where(
                t.users.c.name == login,
                t.users.c.account_id == account_id,
                t.users.c.is_root.is_(False),
            )
        ).scalar()
        if user_id is None:
            raise NotFound(f"RAM user {login!r} does not exist")
        return int(user_id)

    def get_user(self, account_id: int, account_name: str, name: str) -> RamUser:
        users = self.list_users(account_id, only=f"{name}@{account_name}")
        if not users:
            raise NotFound(f"RAM user {name}@{account_name} does not exist")
        return users[0]

    def list_users(
        self,
        account_id: int,
        *,
        limit: int = 100,
        after: str | None = None,
        only: str | None = None,
    ) -> list[RamUser]:
        q = (
            sa.select(t.users)
            .where(t.users.c.account_id == account_id, t.users.c.is_root.is_(False))
            .order_by(t.users.c.name)
            .limit(limit)
        )
        if after:
            q = q.where(t.users.c.name > after)
        if only:
            q = q.where(t.users.c.name == only)
        with self.db.read() as conn:
            rows = conn.execute(q).all()
            attached: dict[int, list[str]] = {}
            if rows:
                for user_id, policy in conn.execute(
                    sa.select(t.user_policies.c.user_id, t.policies.c.name)
                    .select_from(t.user_policies.join(t.policies))
                    .where(t.user_policies.c.user_id.in_([r.id for r in rows]))
                    .order_by(t.policies.c.name)
                ):
                    attached.setdefault(user_id, []).append(policy)
        return [
            RamUser(
                id=r.id,
                name=r.name.split("@")[0],
                login=r.name,
                has_registry_password=r.registry_password_hash is not None,
                policies=tuple(attached.get(r.id, ())),
                created_at=as_utc(r.created_at),
            )
            for r in rows
        ]

    def set_registry_password(self, account_id: int, login: str, password: str) -> None:
        with self.db.write() as conn:
            store_registry_password(conn, self._user_id(conn, account_id, login), password)

    # -- access keys -----------------------------------------------------------------

    def create_access_key(self, account_id: int, login: str) -> tuple[str, str]:
        """A new (AccessKeyId, AccessKeySecret); the secret is shown this once."""
        key_id = "LTAI" + secrets.token_hex(10).upper()
        secret = secrets.token_urlsafe(24)
        with self.db.write() as conn:
            user_id = self._user_id(conn, account_id, login)
            held = conn.execute(
                sa.select(sa.func.count()).where(t.access_keys.c.user_id == user_id)
            ).scalar_one()
            if held >= MAX_ACCESS_KEYS:
                raise Conflict(
                    f"{login} already has {MAX_ACCESS_KEYS} access keys; delete one first"
                )
            conn.execute(
                sa.insert(t.access_keys).values(
                    id=key_id,
                    user_id=user_id,
                    secret_hash=hash_password(secret),
                    created_at=utcnow(),
                )
            )
        return key_id, secret

    def list_access_keys(self, account_id: int, login: str) -> list[tuple[str, datetime]]:
        with self.db.read() as conn:
            user_id = self._user_id(conn, account_id, login)
            rows = conn.execute(
                sa.select(t.access_keys.c.id, t.access_keys.c.created_at)
                .where(t.access_keys.c.user_id == user_id)
                .order_by(t.access_keys.c.created_at)
            ).all()
        return [(r.id, as_utc(r.created_at)) for r in rows]

    def delete_access_key(self, account_id: int, login: str, key_id: str) -> None:
        with self.db.write() as conn:
            user_id = self._user_id(conn, account_id, login)
            res = conn.execute(
                sa.delete(t.access_keys).where(
                    t.access_keys.c.id == key_id, t.access_keys.c.user_id == user_id
                )
            )
        if res.rowcount == 0:
            raise NotFound(f"access key {key_id!r} does not exist")

    # -- policies --------------------------------------------------------------------

    def _visible(self, account_id: int) -> sa.ColumnElement[bool]:
        return sa.or_(t.policies.c.account_id.is_(None), t.policies.c.account_id == account_id)

    def list_policies(self, account_id: int) -> list[StoredPolicy]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(t.policies)
                .where(self._visible(account_id))
                .order_by(t.policies.c.account_id.is_not(None), t.policies.c.name)
            ).all()
        return [_stored(r) for r in rows]

    def get_policy(self, account_id: int, name: str) -> StoredPolicy:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.policies).where(self._visible(account_id), t.policies.c.name == name)
            ).first()
        if row is None:
            raise NotFound(f"policy {name!r} does not exist")
        return _stored(row)

    def put_policy(
        self, account_id: int, name: str, document: Any, *, create_only: bool = False
    ) -> StoredPolicy:
        """Create a custom policy, or replace its document; refuse a malformed one."""
        if not POLICY_NAME.fullmatch(name):
            raise Invalid("a policy name has 1 to 128 letters, digits, '.', '_', '-'")
        try:
            policy = parse_policy(document)
        except PolicyError as exc:
            raise Invalid(f"the policy document is invalid: {exc}") from exc
        text = json.dumps(policy.document)
        now = utcnow()
        with self.db.write() as conn:
            existing = conn.execute(
                sa.select(t.policies.c.id, t.policies.c.account_id).where(
                    self._visible(account_id), t.policies.c.name == name
                )
            ).first()
            if existing is not None and (create_only or existing.account_id is None):
                raise Conflict(
                    f"policy {name!r} already exists"
                    + (
                        " (a system policy cannot be changed)"
                        if existing.account_id is None
                        else ""
                    )
                )
            if existing is None:
                conn.execute(
                    sa.insert(t.policies).values(
                        account_id=account_id,
                        name=name,
                        document=text,
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                conn.execute(
                    sa.update(t.policies)
                    .where(t.policies.c.id == existing.id)
                    .values(document=text, updated_at=now)
                )
        return self.get_policy(account_id, name)

    def delete_policy(self, account_id: int, name: str) -> None:
        with self.db.write() as conn:
            res = conn.execute(
                sa.delete(t.policies).where(
                    t.policies.c.account_id == account_id, t.policies.c.name == name
                )
            )
        if res.rowcount == 0:
            raise NotFound(f"custom policy {name!r} does not exist")

    def attach(self, account_id: int, login: str, policy: str, *, attached: bool) -> None:
        with self.db.write() as conn:
            user_id = self._user_id(conn, account_id, login)
            policy_id = conn.execute(
                sa.select(t.policies.c.id).where(
                    self._visible(account_id), t.policies.c.name == policy
                )
            ).scalar()
            if policy_id is None:
                raise NotFound(f"policy {policy!r} does not exist")
            link = {"user_id": user_id, "policy_id": policy_id}
            if attached:
                upsert(conn, t.user_policies, link, keys=("user_id", "policy_id"))
            else:
                conn.execute(
                    sa.delete(t.user_policies).where(
                        t.user_policies.c.user_id == user_id,
                        t.user_policies.c.policy_id == policy_id,
                    )
                )


def policies_of(conn: Connection, user_id: int) -> tuple[Policy, ...]:
    """The parsed policies attached to a user."""
    docs = conn.execute(
        sa.select(t.policies.c.document)
        .select_from(t.user_policies.join(t.policies))
        .where(t.user_policies.c.user_id == user_id)
    ).scalars()
    return tuple(_parse_cached(d) for d in docs)


_parsed: dict[str, Policy] = {}


def _parse_cached(document: str) -> Policy:
    policy = _parsed.get(document)
    if policy is None:
        if len(_parsed) > 10_000:
            _parsed.clear()
        policy = _parsed[document] = parse_policy(document)
    return policy


def _stored(row: Any) -> StoredPolicy:
    return StoredPolicy(
        name=row.name,
        kind="system" if row.account_id is None else "custom",
        document=json.loads(row.document),
        updated_at=as_utc(row.updated_at),
    )
