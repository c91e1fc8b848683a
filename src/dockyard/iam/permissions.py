"""Repository and namespace permissions: read-only, write or admin for a RAM user or group.

A permission is a policy the system manages: one per (resource, role), attached to every
user and group granted that role there, evaluated by the same engine as any other policy
and listed among the account's policies with type ``managed``. Granting a subject a role
replaces the role it had on that resource; revoking detaches it.

- read-only: ``cr:Get*``, ``cr:List*``, ``cr:PullRepository``;
- write: read-only, plus ``cr:PushRepository`` and ``cr:CreateRepository``;
- admin: ``cr:*``;

on the repository, or on the namespace and every repository in it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dockyard.changes import Changes
from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from dockyard.db.upsert import upsert
from dockyard.errors import Invalid, NotFound
from dockyard.iam.ram import HOLDERS, holder_id
from dockyard.origin import Origin

READ_ONLY_ACTIONS = ["cr:Get*", "cr:List*", "cr:PullRepository"]
ROLE_ACTIONS: dict[str, list[str]] = {
    "read-only": READ_ONLY_ACTIONS,
    "write": [*READ_ONLY_ACTIONS, "cr:PushRepository", "cr:CreateRepository"],
    "admin": ["cr:*"],
}
ROLE_TITLES = {"read-only": "ReadOnly", "write": "Write", "admin": "Admin"}


@dataclass(frozen=True, slots=True)
class Permission:
    subject_type: str
    """``user`` or ``group``."""
    subject: str
    """A user's login (``name@account``) or a group's name."""
    role: str
    policy: str
    """The managed policy that carries it."""

    @property
    def key(self) -> str:
        """Where a listing resumes: ``user:LOGIN`` or ``group:NAME``."""
        return f"{self.subject_type}:{self.subject}"


def permission_document(arn: str, role: str, *, namespace: bool) -> dict[str, Any]:
    resources = [arn, f"{arn}/*"] if namespace else [arn]
    return {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": ROLE_ACTIONS[role], "Resource": resources}],
    }


def _policy_name(arn: str, role: str, *, namespace: bool) -> str:
    # Readable, and unique through the digest of the ARN (names may contain '.' and '-').
    path = arn.split(":repository/", 1)[-1].replace("/", ".")[:80]
    digest = hashlib.sha256(arn.encode()).hexdigest()[:8]
    scope = "Namespace" if namespace else "Repository"
    return f"{scope}{ROLE_TITLES[role]}-{path}-{digest}"


class PermissionService:
    def __init__(self, db: Database, changes: Changes) -> None:
        self.db = db
        self.changes = changes

    def _subject(self, conn: Connection, account_id: int, subject: str) -> tuple[str, int, str]:
        """Resolve ``user:NAME``, ``group:NAME``, ``NAME@account`` or a plain name (a user
        first, then a group) to (type, id, display name)."""
        account_name = conn.execute(
            sa.select(t.accounts.c.name).where(t.accounts.c.id == account_id)
        ).scalar_one()
        kind, sep, name = subject.partition(":")
        if sep and kind in ("user", "group"):
            candidates = [kind]
        else:
            name, candidates = subject, ["user", "group"]
        for candidate in candidates:
            if candidate == "user":
                login = name if "@" in name else f"{name}@{account_name}"
                user_id = conn.execute(
                    sa.select(t.users.c.id).where(
                        t.users.c.name == login,
                        t.users.c.account_id == account_id,
                        t.users.c.is_root.is_(False),
                    )
                ).scalar()
                if user_id is not None:
                    return "user", int(user_id), login
            elif "@" not in name:
                try:
                    return "group", holder_id(conn, "group", account_id, name), name
                except NotFound:
                    pass
        raise NotFound(f"no RAM user or group {name!r} in this account")

    def grant(
        self,
        origin: Origin,
        account_id: int,
        arn: str,
        subject: str,
        role: str,
        *,
        namespace: bool,
    ) -> Permission:
        if role not in ROLE_ACTIONS:
            raise Invalid("role must be read-only, write or admin")
        with self.changes.open(origin) as change:
            conn = change.conn
            kind, subject_id, display = self._subject(conn, account_id, subject)
            self._detach(conn, kind, subject_id, account_id, arn)
            policy_id, name = self._managed_policy(conn, account_id, arn, role, namespace)
            _, links, column = HOLDERS[kind]
            upsert(
                conn,
                links,
                {column: subject_id, "policy_id": policy_id},
                keys=(column, "policy_id"),
            )
        return Permission(kind, display, role, name)

    def revoke(self, origin: Origin, account_id: int, arn: str, subject: str) -> None:
        with self.changes.open(origin) as change:
            conn = change.conn
            kind, subject_id, display = self._subject(conn, account_id, subject)
            if not self._detach(conn, kind, subject_id, account_id, arn):
                raise NotFound(f"{kind} {display!r} has no permission here")

    def list(
        self, account_id: int, arn: str, *, limit: int = 1000, after: str | None = None
    ) -> list[Permission]:
        """Users first, then groups, each by name; ``after`` is the :attr:`Permission.key`
        of the last one on the previous page."""
        kinds = ("user", "group")
        after_kind, _, after_name = (after or "").partition(":")
        found: list[Permission] = []
        with self.db.read() as conn:
            for kind in kinds:
                if after and after_kind in kinds and kinds.index(kind) < kinds.index(after_kind):
                    continue
                holders, links, column = HOLDERS[kind]
                q = (
                    sa.select(holders.c.name, t.policies.c.managed_role, t.policies.c.name)
                    .select_from(
                        links.join(t.policies, t.policies.c.id == links.c.policy_id).join(
                            holders, holders.c.id == links.c[column]
                        )
                    )
                    .where(
                        t.policies.c.account_id == account_id,
                        t.policies.c.managed_resource == arn,
                    )
                    .order_by(holders.c.name)
                    .limit(limit - len(found))
                )
                if after and kind == after_kind:
                    q = q.where(holders.c.name > after_name)
                found += [Permission(kind, r[0], r[1], r[2]) for r in conn.execute(q)]
                if len(found) >= limit:
                    break
        return found

    @staticmethod
    def _detach(conn: Connection, kind: str, subject_id: int, account_id: int, arn: str) -> bool:
        _, links, column = HOLDERS[kind]
        managed = sa.select(t.policies.c.id).where(
            t.policies.c.account_id == account_id, t.policies.c.managed_resource == arn
        )
        res = conn.execute(
            sa.delete(links).where(links.c[column] == subject_id, links.c.policy_id.in_(managed))
        )
        return bool(res.rowcount)

    @staticmethod
    def _managed_policy(
        conn: Connection, account_id: int, arn: str, role: str, namespace: bool
    ) -> tuple[int, str]:
        row = conn.execute(
            sa.select(t.policies.c.id, t.policies.c.name).where(
                t.policies.c.account_id == account_id,
                t.policies.c.managed_resource == arn,
                t.policies.c.managed_role == role,
            )
        ).first()
        if row is not None:
            return int(row.id), str(row.name)
        name = _policy_name(arn, role, namespace=namespace)
        now = utcnow()
        res = conn.execute(
            sa.insert(t.policies).values(
                account_id=account_id,
                name=name,
                document=json.dumps(permission_document(arn, role, namespace=namespace)),
                created_at=now,
                updated_at=now,
                version=1,
                managed_resource=arn,
                managed_role=role,
            )
        )
        pk = res.inserted_primary_key
        assert pk is not None
        return int(pk[0]), name


def forget_permissions(conn: Connection, account_id: int, arn: str) -> None:
    """Drop the permissions on a repository or namespace being deleted (and, for a
    namespace, on the repositories in it), in the transaction that deletes it: a later
    repository of the same name must not inherit them."""
    conn.execute(
        sa.delete(t.policies).where(
            t.policies.c.account_id == account_id,
            sa.or_(
                t.policies.c.managed_resource == arn,
                t.policies.c.managed_resource.startswith(f"{arn}/", autoescape=True),
            ),
        )
    )
