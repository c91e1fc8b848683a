"""Accounts (tenants) and their root users.

An account has a numeric id, a name, and a root user whose login is the account's name.
The instance administrator ``admin`` is the root of the built-in account ``admin``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from dockyard.changes import Changes
from dockyard.db import tables as t
from dockyard.db.engine import Database, as_utc, utcnow
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.iam.passwords import hash_password
from dockyard.origin import Origin

ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9-]{1,30}[a-z0-9]")
MIN_PASSWORD = 8
DEFAULT_NAMESPACE_QUOTA = 3
DEFAULT_REPOSITORY_QUOTA = 300


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    namespace_quota: int
    created_at: datetime
    repository_quota: int = DEFAULT_REPOSITORY_QUOTA


@dataclass(frozen=True, slots=True)
class Usage:
    namespaces: int
    repositories: int


def _account(row: sa.Row[tuple[object, ...]]) -> Account:
    m = row._mapping
    return Account(
        m["id"],
        m["name"],
        m["namespace_quota"],
        as_utc(m["created_at"]),
        m["repository_quota"],
    )


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"a password has at least {MIN_PASSWORD} characters")


def store_registry_password(conn: Connection, user_id: int, password: str) -> None:
    """Set a user's ``docker login`` password, inside the caller's write transaction."""
    check_password(password)
    conn.execute(
        sa.update(t.users)
        .where(t.users.c.id == user_id)
        .values(registry_password_hash=hash_password(password))
    )


def store_console_password(conn: Connection, user_id: int, password: str) -> None:
    """Set a user's console password, inside the caller's write transaction. Until a
    registry password is set, the instance administrator's console password serves
    ``docker login`` too, so the first-start password stops working everywhere once
    the console one changes."""
    check_password(password)
    res = conn.execute(
        sa.update(t.users)
        .where(t.users.c.id == user_id)
        .values(password_hash=hash_password(password))
    )
    if not res.rowcount:
        raise NotFound("the user does not exist")


class AccountService:
    """Creating an account and changing its quotas take the :class:`Origin` of the
    change first: the change and its audit record commit together."""

    def __init__(self, db: Database, changes: Changes) -> None:
        self.db = db
        self.changes = changes

    def create(
        self,
        origin: Origin,
        name: str,
        password: str,
        *,
        namespace_quota: int = DEFAULT_NAMESPACE_QUOTA,
        repository_quota: int = DEFAULT_REPOSITORY_QUOTA,
    ) -> Account:
        """Create an account and its root user (login ``name``)."""
        if not ACCOUNT_NAME.fullmatch(name):
            raise Invalid(
                "an account name has 3 to 32 lowercase letters, digits and '-', starting "
                "with a letter and not ending with '-'"
            )
        check_password(password)
        _check_quotas(namespace_quota, repository_quota)
        now = utcnow()
        try:
            with self.changes.open(origin) as change:
                conn = change.conn
                res = conn.execute(
                    sa.insert(t.accounts).values(
                        name=name,
                        created_at=now,
                        namespace_quota=namespace_quota,
                        repository_quota=repository_quota,
                    )
                )
                pk = res.inserted_primary_key
                assert pk is not None
                conn.execute(
                    sa.insert(t.users).values(
                        name=name,
                        account_id=int(pk[0]),
                        password_hash=hash_password(password),
                        is_admin=False,
                        is_root=True,
                        created_at=now,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"an account or user named {name!r} already exists") from exc
        return self.get(name)

    def get(self, name: str) -> Account:
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.accounts).where(t.accounts.c.name == name)).first()
        if row is None:
            raise NotFound(f"account {name!r} does not exist")
        return _account(row)

    def list(self, *, limit: int = 100, after: str | None = None) -> list[Account]:
        q = sa.select(t.accounts).order_by(t.accounts.c.name).limit(limit)
        if after:
            q = q.where(t.accounts.c.name > after)
        with self.db.read() as conn:
            return [_account(r) for r in conn.execute(q)]

    def set_quotas(
        self,
        origin: Origin,
        name: str,
        *,
        namespace_quota: int | None = None,
        repository_quota: int | None = None,
    ) -> Account:
        _check_quotas(namespace_quota, repository_quota)
        values = {
            key: value
            for key, value in (
                ("namespace_quota", namespace_quota),
                ("repository_quota", repository_quota),
            )
            if value is not None
        }
        with self.changes.open(origin) as change:
            conn = change.conn
            res = conn.execute(
                sa.update(t.accounts)
                .where(t.accounts.c.name == name)
                .values(values or {t.accounts.c.name: name})
            )
        if res.rowcount == 0:
            raise NotFound(f"account {name!r} does not exist")
        return self.get(name)

    def usage(self, account_id: int) -> Usage:
        """How many namespaces and repositories the account holds (against its quotas)."""
        return self.usage_of([account_id])[account_id]

    def usage_of(self, account_ids: Sequence[int]) -> dict[int, Usage]:
        """:meth:`usage` of several accounts, in two grouped queries."""
        ns = t.namespaces.c
        with self.db.read() as conn:
            namespaces: dict[int, int] = dict(
                conn.execute(
                    sa.select(ns.account_id, sa.func.count())
                    .where(ns.account_id.in_(list(account_ids)))
                    .group_by(ns.account_id)
                ).all()
            )
            repositories: dict[int, int] = dict(
                conn.execute(
                    sa.select(ns.account_id, sa.func.count())
                    .select_from(t.repositories.join(t.namespaces))
                    .where(ns.account_id.in_(list(account_ids)))
                    .group_by(ns.account_id)
                ).all()
            )
        return {
            i: Usage(int(namespaces.get(i, 0)), int(repositories.get(i, 0))) for i in account_ids
        }


def _check_quotas(*quotas: int | None) -> None:
    for quota in quotas:
        if quota is not None and (
            not isinstance(quota, int) or isinstance(quota, bool) or not 0 <= quota <= 1_000_000
        ):
            raise Invalid("a quota is an integer from 0 to 1000000")
