"""Brute-force protection for every password check (console, API, ``docker login``).

Failures are counted per login name and per source address over a window that opens at
the first failure. A login name with :attr:`LoginThrottle.max_failures` failures in the
window is locked for :attr:`LoginThrottle.lockout` seconds, doubling with each further
lock-out up to an hour; a source address with :attr:`LoginThrottle.max_failures_per_address`
failures is refused likewise. While locked, even the right password is refused (with a
``Retry-After``), so guessing gains nothing. A success clears the login name's count.

The counts live in the database (``login_failures``), so that every server process
(``--workers N``) and every replica sees the same ones: N processes do not multiply the
limit. Cheap on purpose: a check is one indexed read; a failure is one upsert of both
counters (and, when a limit is reached, one update that starts the lock-out); a success
writes only when there were failures to clear.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from dockyard.db import tables as t
from dockyard.db.engine import Database
from dockyard.db.upsert import dialect_insert

MAX_LOCKOUT = 3600.0
_C = t.login_failures.c
_CHECK = sa.select(_C.key, _C.failures, _C.locked_until).where(
    _C.key.in_(sa.bindparam("keys", expanding=True))
)
_CLEAR = sa.delete(t.login_failures).where(_C.key == sa.bindparam("key"))
_LOCK = (
    sa.update(t.login_failures)
    .where(_C.key == sa.bindparam("k"), _C.failures >= sa.bindparam("limit"))
    .values(
        failures=0,
        lockouts=_C.lockouts + 1,
        locked_until=sa.bindparam("until"),
        window_start=sa.bindparam("now"),
    )
)


class LoginThrottled(Exception):
    """Too many failed logins: try again after ``retry_after`` seconds."""

    status = 429

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(f"too many failed logins; try again in {self.retry_after} seconds")


class LoginThrottle:
    def __init__(
        self,
        db: Database,
        *,
        max_failures: int = 10,
        max_failures_per_address: int = 100,
        window: float = 300.0,
        lockout: float = 300.0,
    ) -> None:
        self.db = db
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address
        self.window = window
        self.lockout = lockout

    def check(self, username: str, address: str | None) -> bool:
        """Raise :class:`LoginThrottled` while the name or the address is locked; else
        tell whether the name has failures on record (for :meth:`succeeded`)."""
        now = time.time()
        with self.db.read() as conn:
            rows = conn.execute(_CHECK, {"keys": self._keys(username, address)}).all()
        pending = False
        for row in rows:
            if row.locked_until > now:
                raise LoginThrottled(row.locked_until - now)
            pending = pending or (row.key.startswith("u:") and row.failures > 0)
        return pending

    def failed(self, username: str, address: str | None) -> None:
        now = time.time()
        keys = self._keys(username, address)
        with self.db.write(durable=False) as conn:
            stmt = dialect_insert(conn, t.login_failures).values(
                [{"key": k, "failures": 1, "window_start": now, "lockouts": 0} for k in keys]
            )
            # A window older than self.window starts again at this failure.
            stale = _C.window_start <= now - self.window
            stmt = stmt.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "failures": sa.case((stale, 1), else_=_C.failures + 1),
                    "window_start": sa.case((stale, now), else_=_C.window_start),
                },
            ).returning(_C.key, _C.failures, _C.lockouts)
            for row in conn.execute(stmt).all():
                limit = (
                    self.max_failures if row.key.startswith("u:") else self.max_failures_per_address
                )
                if row.failures >= limit:
                    pause = min(self.lockout * 2**row.lockouts, MAX_LOCKOUT)
                    # Only the first of concurrent failures to reach the limit locks.
                    conn.execute(
                        _LOCK, {"k": row.key, "limit": limit, "until": now + pause, "now": now}
                    )

    def succeeded(self, username: str, pending: bool = True) -> None:
        """Clear the name's failures (``pending``: :meth:`check` found some; a success
        without any writes nothing)."""
        if pending:
            with self.db.write(durable=False) as conn:
                conn.execute(_CLEAR, {"key": f"u:{username.lower()}"})

    def purge(self) -> None:
        """Forget counters whose window and lock-out are both over."""
        now = time.time()
        with self.db.write(durable=False) as conn:
            conn.execute(
                sa.delete(t.login_failures).where(
                    _C.locked_until <= now, _C.window_start <= now - self.window
                )
            )

    @staticmethod
    def _keys(username: str, address: str | None) -> list[str]:
        keys = [f"u:{username.lower()}"[:300]]
        if address:
            keys.append(f"a:{address}"[:300])
        return keys
