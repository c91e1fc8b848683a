"""RAM users, groups, roles and policies inside an account.

A RAM user's login is ``name@account``. It has a console password (optional), a separate
registry password for ``docker login``, up to two access keys, and the policies attached
to it and to its groups, which decide what it may do in its own account
(``iam.authz``). A role has a trust policy (who may assume it through STS) and attached
policies (what its sessions may do).

Policies are the two system policies (shared by every account), each account's custom
ones (versioned: an update adds a version and makes it the default; the last
:data:`MAX_POLICY_VERSIONS` are kept), and the ones the system manages for repository
and namespace permissions (``iam.permissions``), which are shown but changed only through
those permissions.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from dockyard.changes import Changes
from dockyard.db import tables as t
from dockyard.db.engine import Database, as_utc, utcnow
from dockyard.db.upsert import upsert
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.iam.accounts import (
    check_password,
    store_console_password,
    store_registry_password,
)
from dockyard.iam.passwords import generate_password, hash_password
from dockyard.iam.policy import Policy, PolicyError, parse_policy
from dockyard.origin import Origin

USER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
GROUP_OR_ROLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_ACCESS_KEYS = 2
POLICY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_POLICY_VERSIONS = 5
MIN_SESSION_SECONDS = 900
MAX_SESSION_SECONDS = 43_200
MAX_DESCRIPTION = 1024
T = TypeVar("T")

# The tables behind each kind of policy holder: its table, its attachment table and the
# attachment's column naming it.
HOLDERS: dict[str, tuple[sa.Table, sa.Table, str]] = {
    "user": (t.users, t.user_policies, "user_id"),
    "group": (t.groups, t.group_policies, "group_id"),
    "role": (t.roles, t.role_policies, "role_id"),
}


@dataclass(frozen=True, slots=True)
class RamUser:
    id: int
    name: str
    login: str
    has_registry_password: bool
    policies: tuple[str, ...]
    created_at: datetime
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    name: str
    kind: str
    """``system``, ``custom`` or ``managed`` (a repository or namespace permission)."""
    document: dict[str, Any]
    updated_at: datetime
    version: int = 1
    managed_resource: str | None = None
    managed_role: str | None = None


@dataclass(frozen=True, slots=True)
class RamGroup:
    name: str
    description: str
    members: tuple[str, ...]
    """Member logins (``name@account``)."""
    policies: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RamRole:
    id: int
    name: str
    arn: str
    description: str
    trust_policy: dict[str, Any]
    max_session_seconds: int
    policies: tuple[str, ...]
    created_at: datetime


def role_arn(account_id: int, name: str) -> str:
    return f"acs:ram::{account_id}:role/{name}"


def _check_description(description: str) -> None:
    if len(description) > MAX_DESCRIPTION:
        raise Invalid(f"a description has at most {MAX_DESCRIPTION} characters")


def _check_session_seconds(seconds: int) -> None:
    if not MIN_SESSION_SECONDS <= seconds <= MAX_SESSION_SECONDS:
        raise Invalid(
            f"max_session_seconds must be from {MIN_SESSION_SECONDS} to {MAX_SESSION_SECONDS}"
        )


def _parse_trust(document: Any) -> Policy:
    try:
        return parse_policy(document, trust=True)
    except PolicyError as exc:
        raise Invalid(f"the trust policy is invalid: {exc}") from exc


_POLICY_KINDS: dict[str, sa.ColumnElement[bool]] = {
    "system": t.policies.c.account_id.is_(None),
    "custom": sa.and_(
        t.policies.c.account_id.is_not(None), t.policies.c.managed_resource.is_(None)
    ),
    "managed": t.policies.c.managed_resource.is_not(None),
}
"""Each type of policy, as the condition that picks its rows."""


class RamService:
    """Every write takes the :class:`Origin` of the change first: the change and its
    audit record commit in one transaction."""

    def __init__(self, db: Database, changes: Changes) -> None:
        self.db = db
        self.changes = changes

    # -- users -----------------------------------------------------------------------

    def create_user(
        self, origin: Origin, account_id: int, account_name: str, name: str, password: str | None
    ) -> RamUser:
        if not USER_NAME.fullmatch(name):
            raise Invalid("a RAM user name has 1 to 64 lowercase letters, digits, '.', '_' and '-'")
        if password is not None:
            check_password(password)
        login = f"{name}@{account_name}"
        try:
            with self.changes.open(origin) as change:
                conn = change.conn
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
        login = f"{name}@{account_name}"
        return _one(self.list_users(account_id, only=login), f"RAM user {login}")

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
            attached = _attached(conn, "user", [r.id for r in rows])
            groups: dict[int, list[str]] = {}
            for user_id, group in conn.execute(
                sa.select(t.group_members.c.user_id, t.groups.c.name)
                .select_from(t.group_members.join(t.groups))
                .where(t.group_members.c.user_id.in_([r.id for r in rows]))
                .order_by(t.groups.c.name)
            ):
                groups.setdefault(user_id, []).append(group)
        return [
            RamUser(
                id=r.id,
                name=r.name.split("@")[0],
                login=r.name,
                has_registry_password=r.registry_password_hash is not None,
                policies=tuple(attached.get(r.id, ())),
                created_at=as_utc(r.created_at),
                groups=tuple(groups.get(r.id, ())),
            )
            for r in rows
        ]

    def set_registry_password(
        self, origin: Origin, account_id: int, login: str, password: str
    ) -> None:
        with self.changes.open(origin) as change:
            conn = change.conn
            store_registry_password(conn, self._user_id(conn, account_id, login), password)

    def set_console_password(
        self, origin: Origin, account_id: int, login: str, password: str
    ) -> None:
        with self.changes.open(origin) as change:
            conn = change.conn
            store_console_password(conn, self._user_id(conn, account_id, login), password)

    def delete_user(self, origin: Origin, account_id: int, login: str) -> None:
        """Delete a RAM user that holds nothing more: one that still has access keys,
        attached policies (repository and namespace permissions included) or group
        memberships is refused, naming them (as RAM's ``DeleteConflict.User.*``)."""
        with self.changes.open(origin) as change:
            conn = change.conn
            user_id = self._user_id(conn, account_id, login)
            refuse_while_held(conn, f"RAM user {login!r} still has", user_id, _USER_HOLDS)
            conn.execute(sa.delete(t.users).where(t.users.c.id == user_id))

    def user_id(self, account_id: int, login: str) -> int:
        with self.db.read() as conn:
            return self._user_id(conn, account_id, login)

    # -- access keys (of any user, root included, by id) ---------------------------------

    def create_access_key(self, origin: Origin, user_id: int) -> tuple[str, str]:
        """A new (AccessKeyId, AccessKeySecret); the secret is shown this once."""
        key_id = "LTAI" + secrets.token_hex(10).upper()
        secret = secrets.token_urlsafe(24)
        with self.changes.open(origin) as change:
            conn = change.conn
            held = conn.execute(
                sa.select(sa.func.count()).where(t.access_keys.c.user_id == user_id)
            ).scalar_one()
            if held >= MAX_ACCESS_KEYS:
                raise Conflict(
                    f"a user has at most {MAX_ACCESS_KEYS} access keys; delete one first"
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

    def list_access_keys(self, user_id: int) -> list[tuple[str, datetime]]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(t.access_keys.c.id, t.access_keys.c.created_at)
                .where(t.access_keys.c.user_id == user_id)
                .order_by(t.access_keys.c.created_at)
            ).all()
        return [(r.id, as_utc(r.created_at)) for r in rows]

    def delete_access_key(self, origin: Origin, user_id: int, key_id: str) -> None:
        with self.changes.open(origin) as change:
            conn = change.conn
            res = conn.execute(
                sa.delete(t.access_keys).where(
                    t.access_keys.c.id == key_id, t.access_keys.c.user_id == user_id
                )
            )
        if res.rowcount == 0:
            raise NotFound(f"access key {key_id!r} does not exist")

    # -- groups ----------------------------------------------------------------------

    def create_group(
        self, origin: Origin, account_id: int, name: str, description: str = ""
    ) -> RamGroup:
        if not GROUP_OR_ROLE_NAME.fullmatch(name):
            raise Invalid("a group name has 1 to 64 letters, digits, '.', '_' and '-'")
        _check_description(description)
        try:
            with self.changes.open(origin) as change:
                conn = change.conn
                conn.execute(
                    sa.insert(t.groups).values(
                        account_id=account_id,
                        name=name,
                        description=description,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"group {name!r} already exists") from exc
        return self.get_group(account_id, name)

    def list_groups(
        self,
        account_id: int,
        *,
        limit: int = 100,
        after: str | None = None,
        only: str | None = None,
    ) -> list[RamGroup]:
        with self.db.read() as conn:
            rows = _page(conn, t.groups, account_id, limit=limit, after=after, only=only)
            ids = [r.id for r in rows]
            members: dict[int, list[str]] = {}
            for group_id, login in conn.execute(
                sa.select(t.group_members.c.group_id, t.users.c.name)
                .select_from(t.group_members.join(t.users))
                .where(t.group_members.c.group_id.in_(ids))
                .order_by(t.users.c.name)
            ):
                members.setdefault(group_id, []).append(login)
            attached = _attached(conn, "group", ids)
        return [
            RamGroup(
                name=r.name,
                description=r.description,
                members=tuple(members.get(r.id, ())),
                policies=tuple(attached.get(r.id, ())),
                created_at=as_utc(r.created_at),
            )
            for r in rows
        ]

    def get_group(self, account_id: int, name: str) -> RamGroup:
        return _one(self.list_groups(account_id, only=name), f"group {name!r}")

    def delete_group(self, origin: Origin, account_id: int, name: str) -> None:
        """Delete a group without members or attached policies (refused otherwise)."""
        self._delete_holder(origin, "group", account_id, name)

    def set_membership(
        self, origin: Origin, account_id: int, group: str, login: str, *, member: bool
    ) -> None:
        with self.changes.open(origin) as change:
            conn = change.conn
            group_id = holder_id(conn, "group", account_id, group)
            user_id = self._user_id(conn, account_id, login)
            link = {"group_id": group_id, "user_id": user_id}
            if member:
                upsert(conn, t.group_members, link, keys=("group_id", "user_id"))
            else:
                conn.execute(
                    sa.delete(t.group_members).where(
                        t.group_members.c.group_id == group_id,
                        t.group_members.c.user_id == user_id,
                    )
                )

    # -- roles -----------------------------------------------------------------------

    def create_role(
        self,
        origin: Origin,
        account_id: int,
        name: str,
        trust_policy: Any,
        *,
        description: str = "",
        max_session_seconds: int = 3600,
    ) -> RamRole:
        if not GROUP_OR_ROLE_NAME.fullmatch(name):
            raise Invalid("a role name has 1 to 64 letters, digits, '.', '_' and '-'")
        trust = _parse_trust(trust_policy)
        _check_description(description)
        _check_session_seconds(max_session_seconds)
        try:
            with self.changes.open(origin) as change:
                conn = change.conn
                conn.execute(
                    sa.insert(t.roles).values(
                        account_id=account_id,
                        name=name,
                        description=description,
                        trust_policy=json.dumps(trust.document),
                        max_session_seconds=max_session_seconds,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"role {name!r} already exists") from exc
        return self.get_role(account_id, name)

    def update_role(
        self,
        origin: Origin,
        account_id: int,
        name: str,
        *,
        trust_policy: Any = None,
        description: str | None = None,
        max_session_seconds: int | None = None,
    ) -> RamRole:
        values: dict[str, Any] = {}
        if trust_policy is not None:
            values["trust_policy"] = json.dumps(_parse_trust(trust_policy).document)
        if description is not None:
            _check_description(description)
            values["description"] = description
        if max_session_seconds is not None:
            _check_session_seconds(max_session_seconds)
            values["max_session_seconds"] = max_session_seconds
        with self.changes.open(origin) as change:
            conn = change.conn
            role_id = holder_id(conn, "role", account_id, name)
            if values:
                conn.execute(sa.update(t.roles).where(t.roles.c.id == role_id).values(**values))
        return self.get_role(account_id, name)

    def list_roles(
        self,
        account_id: int,
        *,
        limit: int = 100,
        after: str | None = None,
        only: str | None = None,
    ) -> list[RamRole]:
        with self.db.read() as conn:
            rows = _page(conn, t.roles, account_id, limit=limit, after=after, only=only)
            attached = _attached(conn, "role", [r.id for r in rows])
        return [
            RamRole(
                id=r.id,
                name=r.name,
                arn=role_arn(account_id, r.name),
                description=r.description,
                trust_policy=json.loads(r.trust_policy),
                max_session_seconds=r.max_session_seconds,
                policies=tuple(attached.get(r.id, ())),
                created_at=as_utc(r.created_at),
            )
            for r in rows
        ]

    def get_role(self, account_id: int, name: str) -> RamRole:
        return _one(self.list_roles(account_id, only=name), f"role {name!r}")

    def delete_role(self, origin: Origin, account_id: int, name: str) -> None:
        """Delete a role without attached policies (refused otherwise); the STS
        credentials of its sessions stop working with it."""
        self._delete_holder(origin, "role", account_id, name)

    def _delete_holder(self, origin: Origin, kind: str, account_id: int, name: str) -> None:
        table = HOLDERS[kind][0]
        with self.changes.open(origin) as change:
            conn = change.conn
            doomed = holder_id(conn, kind, account_id, name)
            refuse_while_held(
                conn, f"{kind} {name!r} still has", doomed, _GROUP_OR_ROLE_HOLDS[kind]
            )
            conn.execute(sa.delete(table).where(table.c.id == doomed))

    # -- policies --------------------------------------------------------------------

    def _visible(self, account_id: int) -> sa.ColumnElement[bool]:
        return sa.or_(t.policies.c.account_id.is_(None), t.policies.c.account_id == account_id)

    def list_policies(
        self,
        account_id: int,
        *,
        kind: str | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> list[StoredPolicy]:
        """System, custom and managed policies visible in the account, by name (``kind``
        narrows: one type or several, comma-separated, as ``system,custom`` for those a
        person attaches; ``after`` is the last name of the previous page)."""
        q = sa.select(t.policies).where(self._visible(account_id)).limit(limit)
        if after:
            q = q.where(t.policies.c.name > after)
        if kind is not None:
            kinds = {k.strip() for k in kind.split(",")}
            if not kinds or not kinds <= set(_POLICY_KINDS):
                raise Invalid(
                    "type must be system, custom or managed (or several, comma-separated)"
                )
            q = q.where(sa.or_(*(_POLICY_KINDS[k] for k in sorted(kinds))))
        q = q.order_by(t.policies.c.name)
        with self.db.read() as conn:
            rows = conn.execute(q).all()
        return [_stored(r) for r in rows]

    def get_policy(self, account_id: int, name: str) -> StoredPolicy:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.policies).where(self._visible(account_id), t.policies.c.name == name)
            ).first()
        if row is None:
            raise NotFound(f"policy {name!r} does not exist")
        return _stored(row)

    def policy_versions(
        self, account_id: int, name: str
    ) -> list[tuple[int, dict[str, Any], datetime]]:
        """A policy's kept versions, newest first: (version, document, created_at)."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.policies).where(self._visible(account_id), t.policies.c.name == name)
            ).first()
            if row is None:
                raise NotFound(f"policy {name!r} does not exist")
            if row.account_id is None or row.managed_resource is not None:
                return [(row.version, json.loads(row.document), as_utc(row.updated_at))]
            versions = conn.execute(
                sa.select(t.policy_versions)
                .where(t.policy_versions.c.policy_id == row.id)
                .order_by(t.policy_versions.c.version.desc())
            ).all()
        return [(v.version, json.loads(v.document), as_utc(v.created_at)) for v in versions]

    def put_policy(
        self,
        origin: Origin,
        account_id: int,
        name: str,
        document: Any,
        *,
        create_only: bool = False,
    ) -> StoredPolicy:
        """Create a custom policy, or add a new default version of it; refuse a malformed
        document (naming the bad field), a system policy and a managed one."""
        if not POLICY_NAME.fullmatch(name):
            raise Invalid("a policy name has 1 to 128 letters, digits, '.', '_', '-'")
        try:
            policy = parse_policy(document)
        except PolicyError as exc:
            raise Invalid(f"the policy document is invalid: {exc}") from exc
        text = json.dumps(policy.document)
        now = utcnow()
        with self.changes.open(origin) as change:
            conn = change.conn
            existing = conn.execute(
                sa.select(
                    t.policies.c.id,
                    t.policies.c.account_id,
                    t.policies.c.version,
                    t.policies.c.managed_resource,
                ).where(self._visible(account_id), t.policies.c.name == name)
            ).first()
            if existing is not None and existing.account_id is None:
                raise Conflict(f"policy {name!r} is a system policy and cannot be changed")
            if existing is not None and existing.managed_resource is not None:
                raise Conflict(
                    f"policy {name!r} is managed by the system; change the repository or "
                    "namespace permission instead"
                )
            if existing is not None and create_only:
                raise Conflict(f"policy {name!r} already exists")
            if existing is None:
                res = conn.execute(
                    sa.insert(t.policies).values(
                        account_id=account_id,
                        name=name,
                        document=text,
                        created_at=now,
                        updated_at=now,
                        version=1,
                    )
                )
                pk = res.inserted_primary_key
                assert pk is not None
                policy_id, version = int(pk[0]), 1
            else:
                policy_id, version = existing.id, existing.version + 1
                conn.execute(
                    sa.update(t.policies)
                    .where(t.policies.c.id == policy_id)
                    .values(document=text, updated_at=now, version=version)
                )
            conn.execute(
                sa.insert(t.policy_versions).values(
                    policy_id=policy_id, version=version, document=text, created_at=now
                )
            )
            conn.execute(
                sa.delete(t.policy_versions).where(
                    t.policy_versions.c.policy_id == policy_id,
                    t.policy_versions.c.version <= version - MAX_POLICY_VERSIONS,
                )
            )
        return self.get_policy(account_id, name)

    def delete_policy(self, origin: Origin, account_id: int, name: str) -> None:
        """Delete a custom policy attached to nobody (refused while it is attached)."""
        with self.changes.open(origin) as change:
            conn = change.conn
            row = conn.execute(
                sa.select(t.policies.c.id, t.policies.c.managed_resource).where(
                    t.policies.c.account_id == account_id, t.policies.c.name == name
                )
            ).first()
            if row is None:
                raise NotFound(f"custom policy {name!r} does not exist")
            if row.managed_resource is not None:
                raise Conflict(
                    f"policy {name!r} is managed by the system; revoke the permission instead"
                )
            refuse_while_held(conn, f"policy {name!r} is still attached to", row.id, _POLICY_HOLDS)
            conn.execute(sa.delete(t.policies).where(t.policies.c.id == row.id))

    def attach(
        self,
        origin: Origin,
        account_id: int,
        kind: str,
        holder: str,
        policy: str,
        *,
        attached: bool,
    ) -> None:
        """Attach a policy to (or detach it from) a user (by login), group or role."""
        _, links, column = HOLDERS[kind]
        with self.changes.open(origin) as change:
            conn = change.conn
            holder_key = (
                self._user_id(conn, account_id, holder)
                if kind == "user"
                else holder_id(conn, kind, account_id, holder)
            )
            row = conn.execute(
                sa.select(t.policies.c.id, t.policies.c.managed_resource).where(
                    self._visible(account_id), t.policies.c.name == policy
                )
            ).first()
            if row is None:
                raise NotFound(f"policy {policy!r} does not exist")
            if row.managed_resource is not None:
                raise Conflict(
                    f"policy {policy!r} is managed by the system; grant the repository or "
                    "namespace permission instead"
                )
            link = {column: holder_key, "policy_id": row.id}
            if attached:
                upsert(conn, links, link, keys=(column, "policy_id"))
            else:
                conn.execute(
                    sa.delete(links).where(
                        links.c[column] == holder_key, links.c.policy_id == row.id
                    )
                )


@dataclass(frozen=True, slots=True)
class Hold:
    """Rows that keep something from being deleted: those of ``table`` whose ``column``
    names it, each ``one`` (``many``), to be undone by ``remedy``; ``code`` is the reason
    RAM gives (``DeleteConflict.User.AccessKey``)."""

    table: sa.Table
    column: str
    one: str
    many: str
    remedy: str
    code: str


_USER_HOLDS = (
    Hold(
        t.access_keys,
        "user_id",
        "access key",
        "access keys",
        "delete its access keys",
        "DeleteConflict.User.AccessKey",
    ),
    Hold(
        t.user_policies,
        "user_id",
        "attached policy",
        "attached policies",
        "detach its policies and revoke its permissions",
        "DeleteConflict.User.Policy",
    ),
    Hold(
        t.group_members,
        "user_id",
        "group membership",
        "group memberships",
        "remove it from its groups",
        "DeleteConflict.User.Group",
    ),
)
_GROUP_OR_ROLE_HOLDS = {
    "group": (
        Hold(
            t.group_members,
            "group_id",
            "member",
            "members",
            "remove its members",
            "DeleteConflict.Group.User",
        ),
        Hold(
            t.group_policies,
            "group_id",
            "attached policy",
            "attached policies",
            "detach its policies and revoke its permissions",
            "DeleteConflict.Group.Policy",
        ),
    ),
    "role": (
        Hold(
            t.role_policies,
            "role_id",
            "attached policy",
            "attached policies",
            "detach its policies",
            "DeleteConflict.Role.Policy",
        ),
    ),
}
_POLICY_HOLDS = (
    Hold(
        t.user_policies,
        "policy_id",
        "user",
        "users",
        "detach it from them",
        "DeleteConflict.Policy.User",
    ),
    Hold(
        t.group_policies,
        "policy_id",
        "group",
        "groups",
        "detach it from them",
        "DeleteConflict.Policy.Group",
    ),
    Hold(
        t.role_policies,
        "policy_id",
        "role",
        "roles",
        "detach it from them",
        "DeleteConflict.Policy.Role",
    ),
)


def refuse_while_held(conn: Connection, what: str, key: int, holds: tuple[Hold, ...]) -> None:
    """Refuse (409) to delete the thing of id ``key`` while any of ``holds`` has rows
    naming it: deleting them with it would lose them silently. The message is ``what``
    ("group 'devs' still has"), then what holds it, how many, and what to do first; the
    code is the first hold's."""
    held = []
    for hold in holds:
        count = conn.execute(
            sa.select(sa.func.count()).where(hold.table.c[hold.column] == key)
        ).scalar_one()
        if count:
            held.append((count, hold))
    if not held:
        return
    found = _and([f"{n} {hold.one if n == 1 else hold.many}" for n, hold in held])
    remedies = list(dict.fromkeys(hold.remedy for _, hold in held))
    raise Conflict(f"{what} {found}; {_and(remedies)} first", code=held[0][1].code)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def holder_id(conn: Connection, kind: str, account_id: int, name: str) -> int:
    """The id of a group or role of the account, by name."""
    table = HOLDERS[kind][0]
    found = conn.execute(
        sa.select(table.c.id).where(table.c.account_id == account_id, table.c.name == name)
    ).scalar()
    if found is None:
        raise NotFound(f"{kind} {name!r} does not exist")
    return int(found)


def _one(found: list[T], what: str) -> T:
    if not found:
        raise NotFound(f"{what} does not exist")
    return found[0]


def _page(
    conn: Connection,
    table: sa.Table,
    account_id: int,
    *,
    limit: int,
    after: str | None,
    only: str | None,
) -> list[Any]:
    """A page of an account's groups or roles, by name (or the one named ``only``)."""
    q = sa.select(table).where(table.c.account_id == account_id).order_by(table.c.name).limit(limit)
    if after:
        q = q.where(table.c.name > after)
    if only is not None:
        q = q.where(table.c.name == only)
    return list(conn.execute(q).all())


def _attached(conn: Connection, kind: str, ids: list[int]) -> dict[int, list[str]]:
    """Names of the policies attached to each of these users, groups or roles."""
    _, links, column = HOLDERS[kind]
    attached: dict[int, list[str]] = {}
    if not ids:
        return attached
    for holder_id, policy in conn.execute(
        sa.select(links.c[column], t.policies.c.name)
        .select_from(links.join(t.policies))
        .where(links.c[column].in_(ids))
        .order_by(t.policies.c.name)
    ):
        attached.setdefault(holder_id, []).append(policy)
    return attached


# Built once: this runs on every request a RAM user authenticates with a password.
_USER_POLICIES = sa.union(
    sa.select(t.policies.c.document)
    .select_from(t.user_policies.join(t.policies))
    .where(t.user_policies.c.user_id == sa.bindparam("user_id")),
    sa.select(t.policies.c.document)
    .select_from(
        t.group_members.join(
            t.group_policies, t.group_policies.c.group_id == t.group_members.c.group_id
        ).join(t.policies, t.policies.c.id == t.group_policies.c.policy_id)
    )
    .where(t.group_members.c.user_id == sa.bindparam("user_id")),
)
_ROLE_POLICIES = (
    sa.select(t.policies.c.document)
    .select_from(t.role_policies.join(t.policies))
    .where(t.role_policies.c.role_id == sa.bindparam("role_id"))
)


def policies_of(conn: Connection, user_id: int) -> tuple[Policy, ...]:
    """The parsed policies attached to a user and to the groups it belongs to."""
    docs = conn.execute(_USER_POLICIES, {"user_id": user_id}).scalars()
    return tuple(_parse_cached(d) for d in docs)


def role_policies_of(conn: Connection, role_id: int) -> tuple[Policy, ...]:
    """The parsed policies attached to a role."""
    docs = conn.execute(_ROLE_POLICIES, {"role_id": role_id}).scalars()
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
    if row.account_id is None:
        kind = "system"
    elif row.managed_resource is not None:
        kind = "managed"
    else:
        kind = "custom"
    return StoredPolicy(
        name=row.name,
        kind=kind,
        document=json.loads(row.document),
        updated_at=as_utc(row.updated_at),
        version=row.version,
        managed_resource=row.managed_resource,
        managed_role=row.managed_role,
    )
