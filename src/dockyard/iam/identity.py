"""Who is calling: users, their passwords, and the administrator created on first start."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dockyard.db import tables as t
from dockyard.db.engine import Database, as_utc, utcnow
from dockyard.db.upsert import lock_keys
from dockyard.errors import Forbidden
from dockyard.iam.accounts import store_console_password, store_registry_password
from dockyard.iam.arn import root_arn
from dockyard.iam.authz import Principal
from dockyard.iam.passwords import generate_password, hash_password, verify_password
from dockyard.iam.policy import Policy, parse_policy
from dockyard.iam.ram import policies_of, role_policies_of
from dockyard.iam.sts import is_sts_key
from dockyard.iam.throttle import LoginThrottle

log = logging.getLogger(__name__)
ADMIN = "admin"
FIRST_PASSWORD_FILE = "admin-password"  # noqa: S105 (a file name)
"""In the data dir: the administrator's generated first-start password, until it is
changed (removed then: it no longer works)."""


_USER = (
    sa.select(
        t.users.c.id,
        t.users.c.name,
        t.users.c.account_id,
        t.users.c.password_hash,
        t.users.c.is_admin,
        t.users.c.is_root,
        t.users.c.registry_password_hash,
        t.users.c.sessions_revoked_at,
        t.accounts.c.name.label("account_name"),
    )
    .select_from(t.users.outerjoin(t.accounts))
    .where(t.users.c.name == sa.bindparam("name"))
)


_USER_BY_ID = (
    sa.select(*_USER.selected_columns)
    .select_from(t.users.outerjoin(t.accounts))
    .where(t.users.c.id == sa.bindparam("id"))
)
_STS_SESSION = (
    sa.select(
        t.sts_sessions.c.secret_hash,
        t.sts_sessions.c.session_name,
        t.sts_sessions.c.policy,
        t.sts_sessions.c.expires_at,
        t.roles.c.id.label("role_id"),
        t.roles.c.name.label("role_name"),
        t.roles.c.account_id,
        t.accounts.c.name.label("account_name"),
    )
    .select_from(t.sts_sessions.join(t.roles).join(t.accounts))
    .where(t.sts_sessions.c.access_key_id == sa.bindparam("key"))
)
ACCESS_KEY_ID = re.compile(r"LTAI[0-9A-F]{20}")


def _principal(row: Any, policies: tuple[Policy, ...] = ()) -> Principal:
    m = row._mapping
    account_id = m["account_id"]
    if m["is_root"]:
        arn = root_arn(account_id)
    else:
        arn = f"acs:ram::{account_id}:user/{m['name'].split('@')[0]}"
    return Principal(
        "user",
        m["name"],
        user_id=m["id"],
        account_id=account_id,
        is_admin=bool(m["is_admin"]),
        is_root=bool(m["is_root"]),
        policies=policies,
        account_name=m["account_name"] or "",
        arn=arn,
    )


class PrincipalCache:
    """Who recently logged in with which credentials, for :attr:`SECONDS` at most.

    Registry clients send Basic credentials on every request; each check costs a
    database load (the user, its policies) and a policy parse. A success is kept under
    an HMAC (with a key of this process's own) of the login name, the password and the
    kind of login, so a wrong password never finds it, and for at most
    :attr:`SECONDS` (STS credentials, which expire, are not kept): a
    password change, a disabled or deleted access key, or a changed policy takes effect
    in every process within that bound (at once in the process that made it: every
    change committed there clears the cache, except registry content — pushes and
    deletes of blobs, manifests and tags — which no login depends on). At most
    :attr:`MAX` entries, the oldest dropped first."""

    SECONDS = 5.0
    MAX = 10_000

    def __init__(self) -> None:
        self._secret = os.urandom(32)
        self._entries: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def key(self, username: str, password: str, registry: bool) -> bytes:
        message = f"{int(registry)}\0{username}\0{password}".encode(errors="surrogatepass")
        return hmac.digest(self._secret, message, "sha256")

    def get(self, key: bytes) -> Principal | None:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= now:
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: bytes, principal: Principal) -> None:
        ttl = self.SECONDS
        if principal.expires_at is not None:
            ttl = min(ttl, principal.expires_at - time.time())
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl, principal)
            self._entries.move_to_end(key)
            while len(self._entries) > self.MAX:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class IdentityService:
    def __init__(
        self,
        db: Database,
        throttle: LoginThrottle | None = None,
        *,
        data_dir: Path | None = None,
    ) -> None:
        self.db = db
        self.throttle = throttle or LoginThrottle(db)
        self._principals = PrincipalCache()
        self.data_dir = data_dir
        """Where the first-start password file is removed once the administrator
        changes a password (None: nowhere, for tests of the service alone)."""

    def login(
        self, username: str, password: str, *, source_ip: str | None, registry: bool = False
    ) -> Principal | None:
        """Check a password (console or, with ``registry``, ``docker login``) under the
        brute-force protection: raise :class:`LoginThrottled` while locked out. A
        success is remembered for a few seconds (see :class:`PrincipalCache`): clients
        send Basic credentials on every request."""
        # The lock-out is checked even for a remembered login (one indexed read):
        # while locked, the right password is refused too, in every process.
        pending = self.throttle.check(username, source_ip)
        key = self._principals.key(username, password, registry)
        principal = self._principals.get(key)
        if principal is None:
            principal = self._check(username, password, registry=registry)
            if principal is None:
                self.throttle.failed(username, source_ip)
                return None
            if not is_sts_key(username):  # temporary: checked afresh until they end
                self._principals.put(key, principal)
        self.throttle.succeeded(username, pending)
        return principal

    def forget_logins(self) -> None:
        """Forget remembered logins (after a change in this process: a key, a policy
        or a user may be different now)."""
        self._principals.clear()

    def _sts(self, key_id: str, secret: str | None) -> Principal | None:
        """The principal of live STS credentials (the secret checked when given)."""
        with self.db.read() as conn:
            row = conn.execute(_STS_SESSION, {"key": key_id}).first()
            if row is None:
                return None
            expires = as_utc(row.expires_at)
            if expires <= utcnow():
                return None
            if secret is not None and not verify_password(row.secret_hash, secret):
                return None
            policies = role_policies_of(conn, row.role_id)
        session = None if row.policy is None else parse_policy(row.policy)
        return Principal(
            "user",
            key_id,
            account_id=row.account_id,
            policies=policies,
            session_policy=session,
            expires_at=expires.timestamp(),
            account_name=row.account_name,
            arn=f"acs:ram::{row.account_id}:assumed-role/{row.role_name}/{row.session_name}",
        )

    def _user(self, username: str) -> tuple[Any, tuple[Policy, ...]]:
        """The user's row and, for a RAM user, its attached policies."""
        with self.db.read() as conn:
            row = conn.execute(_USER, {"name": username}).first()
            return self._with_policies(conn, row)

    def _with_policies(self, conn: Any, row: Any) -> tuple[Any, tuple[Policy, ...]]:
        if row is None or row.is_root or row.is_admin:
            return row, ()
        return row, policies_of(conn, row.id)

    def _access_key(self, key_id: str, secret: str) -> Principal | None:
        """The user an access key belongs to, when the secret is right."""
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(t.access_keys.c.secret_hash, t.access_keys.c.user_id).where(
                    t.access_keys.c.id == key_id
                )
            ).first()
            if found is None or not verify_password(found.secret_hash, secret):
                return None
            row = conn.execute(_USER_BY_ID, {"id": found.user_id}).first()
            row, policies = self._with_policies(conn, row)
        return None if row is None else _principal(row, policies)

    def _check(self, username: str, password: str, *, registry: bool) -> Principal | None:
        """The principal whose password this is, or None: the console password, or with
        ``registry`` the ``docker login`` one. The registry password is separate, as in
        the cloud service; until one is set the instance administrator's console
        password (its first-start password) serves for both, and anyone else has no
        registry login yet. An access key or STS credentials (AccessKeyId and
        AccessKeySecret) work in both places."""
        if ACCESS_KEY_ID.fullmatch(username):
            return self._access_key(username, password)
        if is_sts_key(username):
            return self._sts(username, password)
        row, policies = self._user(username)
        if row is None:
            return None
        stored = row.password_hash
        if registry:
            stored = row.registry_password_hash
            if stored is None and row.is_admin:
                stored = row.password_hash
        if stored is None or not verify_password(stored, password):
            return None
        return _principal(row, policies)

    def change_password(
        self, principal: Principal, current: str, password: str, *, source_ip: str | None
    ) -> None:
        """Change one's own console password, knowing the current one (wrong ones are
        throttled like failed logins)."""
        assert principal.user_id is not None
        # Its own count: the caller's other requests succeed (they authenticate), which
        # would otherwise clear the failures of its login name.
        key = f"{principal.name}#current-password"
        pending = self.throttle.check(key, source_ip)
        with self.db.write() as conn:
            stored = conn.execute(
                sa.select(t.users.c.password_hash).where(t.users.c.id == principal.user_id)
            ).scalar()
            right = stored is not None and verify_password(stored, current)
            if right:
                store_console_password(conn, principal.user_id, password)
        if not right:
            # Counted after the transaction: the counters are written in one of their own.
            self.throttle.failed(key, source_ip)
            raise Forbidden("the current password is not right")
        self.throttle.succeeded(key, pending)
        self.forget_logins()
        if principal.is_admin:
            self._forget_first_password()

    def has_registry_password(self, user_id: int) -> bool:
        """Whether the user has set a registry password (``docker login``)."""
        with self.db.read() as conn:
            stored = conn.execute(
                sa.select(t.users.c.registry_password_hash).where(t.users.c.id == user_id)
            ).scalar()
        return stored is not None

    def set_registry_password(self, user_id: int, password: str) -> None:
        with self.db.write() as conn:
            store_registry_password(conn, user_id, password)
            is_admin = conn.execute(
                sa.select(t.users.c.is_admin).where(t.users.c.id == user_id)
            ).scalar()
        self.forget_logins()
        if is_admin:
            self._forget_first_password()

    def _forget_first_password(self) -> None:
        """The administrator changed a password: the first-start one no longer works,
        so its file goes (a replica with a data dir of its own removes its copy at its
        next start, see :meth:`ensure_admin`)."""
        if self.data_dir is not None:
            (self.data_dir / FIRST_PASSWORD_FILE).unlink(missing_ok=True)

    def session_principal(self, subject: str, issued_at: float) -> Principal | None:
        """The principal of an API session token, unless it signed out since."""
        if is_sts_key(subject):
            return self._sts(subject, None)
        row, policies = self._user(subject)
        if row is None:
            return None
        revoked = row.sessions_revoked_at
        if revoked is not None and issued_at <= as_utc(revoked).timestamp():
            return None
        return _principal(row, policies)

    def end_sessions(self, user_id: int) -> None:
        """Sign out everywhere: every session token issued until now stops working."""
        with self.db.write() as conn:
            conn.execute(
                sa.update(t.users)
                .where(t.users.c.id == user_id)
                .values(sessions_revoked_at=utcnow())
            )

    def principal_by_name(self, username: str) -> Principal | None:
        """The principal a token was issued to (for STS credentials: while they last)."""
        if is_sts_key(username):
            return self._sts(username, None)
        row, policies = self._user(username)
        return None if row is None else _principal(row, policies)

    def ensure_admin(self, data_dir: Path, password: str = "") -> str | None:
        """Create ``admin`` (root of the built-in account ``admin``) on first start;
        return the password when one was generated. Safe when many replicas start at
        once on one new database: each looks and inserts under the same lock, so the
        second finds what the first created.

        A generated password is written to ``DATA_DIR/admin-password`` (mode 0600),
        which is removed once the administrator changes either password; a password
        given (``DOCKYARD_ADMIN_PASSWORD``) is written nowhere."""
        path = data_dir / FIRST_PASSWORD_FILE
        generated = False
        with self.db.write() as conn:
            lock_keys(conn, ["bootstrap:admin"])
            account_id = conn.execute(
                sa.select(t.accounts.c.id).where(t.accounts.c.name == ADMIN)
            ).scalar()
            if account_id is None:
                res = conn.execute(sa.insert(t.accounts).values(name=ADMIN, created_at=utcnow()))
                pk = res.inserted_primary_key
                assert pk is not None
                account_id = int(pk[0])
            # Namespaces from before accounts existed belong to the administrator.
            conn.execute(
                sa.update(t.namespaces)
                .where(t.namespaces.c.account_id.is_(None))
                .values(account_id=account_id)
            )
            existing = conn.execute(
                sa.select(t.users.c.password_hash, t.users.c.registry_password_hash).where(
                    t.users.c.name == ADMIN
                )
            ).first()
            if existing is not None:
                conn.execute(
                    sa.update(t.users)
                    .where(t.users.c.name == ADMIN)
                    .values(account_id=account_id, is_root=True)
                )
            else:
                generated = not password
                password = password or generate_password()
                conn.execute(
                    sa.insert(t.users).values(
                        name=ADMIN,
                        account_id=account_id,
                        password_hash=hash_password(password),
                        is_admin=True,
                        is_root=True,
                        created_at=utcnow(),
                    )
                )
        if existing is not None:
            if path.exists() and not _still_first(path, existing):
                path.unlink(missing_ok=True)
            return None
        if not generated:
            log.info("created the instance administrator 'admin'")
            return None
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        os.chmod(path, 0o600)
        # Said once, on purpose: this is the only time the password is shown. A log line
        # (a warning: commands that set no logging up still print it), so that with JSON
        # logs it is JSON too.
        log.warning(
            "Created the instance administrator 'admin' with password: %s "
            "(also written to %s, mode 0600, until it is changed)",
            password,
            path,
        )
        return password


def _still_first(path: Path, admin: Any) -> bool:
    """Whether the password in ``path`` is still the administrator's only one: its
    console password, with no registry password set."""
    if admin.registry_password_hash is not None:
        return False
    try:
        first = path.read_text().strip()
    except OSError:
        return False
    return verify_password(admin.password_hash, first)


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
