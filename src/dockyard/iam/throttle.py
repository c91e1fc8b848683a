"""Brute-force protection for every password check (console, API, ``docker login``).

Failures are counted per login name and per source address over a sliding window. A
login name with :attr:`LoginThrottle.max_failures` failures in the window is locked for
:attr:`LoginThrottle.lockout` seconds, doubling with each further lock-out up to an hour;
a source address with :attr:`LoginThrottle.max_failures_per_address` failures is refused
likewise. While locked, even the right password is refused (with a ``Retry-After``), so
guessing gains nothing. A success clears the login name's count. Counts are kept in the
memory of each server process.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

MAX_LOCKOUT = 3600.0


class LoginThrottled(Exception):
    """Too many failed logins: try again after ``retry_after`` seconds."""

    status = 429

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(f"too many failed logins; try again in {self.retry_after} seconds")


@dataclass(slots=True)
class _Record:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    lockouts: int = 0


class LoginThrottle:
    def __init__(
        self,
        *,
        max_failures: int = 10,
        max_failures_per_address: int = 100,
        window: float = 300.0,
        lockout: float = 300.0,
    ) -> None:
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address
        self.window = window
        self.lockout = lockout
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def check(self, username: str, address: str | None) -> None:
        """Raise :class:`LoginThrottled` while the name or the address is locked."""
        now = time.monotonic()
        with self._lock:
            for key in self._keys(username, address):
                record = self._records.get(key)
                if record is not None and record.locked_until > now:
                    raise LoginThrottled(record.locked_until - now)

    def failed(self, username: str, address: str | None) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._records) > 100_000:
                self._forget_idle(now)
            for key in self._keys(username, address):
                record = self._records.setdefault(key, _Record())
                record.failures.append(now)
                while record.failures and record.failures[0] <= now - self.window:
                    record.failures.popleft()
                limit = self.max_failures if key.startswith("u:") else self.max_failures_per_address
                if len(record.failures) >= limit:
                    record.lockouts += 1
                    pause = min(self.lockout * 2 ** (record.lockouts - 1), MAX_LOCKOUT)
                    record.locked_until = now + pause
                    record.failures.clear()

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._records.pop(f"u:{username.lower()}", None)

    @staticmethod
    def _keys(username: str, address: str | None) -> list[str]:
        keys = [f"u:{username.lower()}"]
        if address:
            keys.append(f"a:{address}")
        return keys

    def _forget_idle(self, now: float) -> None:
        self._records = {
            k: r
            for k, r in self._records.items()
            if r.locked_until > now or (r.failures and r.failures[-1] > now - self.window)
        }
