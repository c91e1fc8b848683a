"""Password and secret hashing (argon2id), with a small cache of recent verifications.

New hashes take 7 MiB and five passes (``m=7 MiB, t=5, p=1``): the last of OWASP's
argon2id configurations, which its Password Storage Cheat Sheet lists as equal in defence
(46 MiB and one pass, 19 MiB and two, 12 MiB and three, 9 MiB and four, 7 MiB and five)
and which differ only in how they trade memory for CPU. The server picks the least
memory: a login that the cache below does not answer runs argon2 on a server thread, and
its work area lands on top of the server's resident set, so that it sets the server's
peak (``make bench``'s RAM user logs in for the first time late in the workload). The CPU
time is about the same as the former 19 MiB and two passes (19 ms against 22 ms a
verification on the benchmark machine), and far from argon2-cffi's default (RFC 9106's
low-memory choice: 64 MiB and three passes over four lanes). The server's allocator is
set up so that a work area goes back to the system when freed (:mod:`dockyard.allocator`).
Hashes made with other parameters (every former default included) still verify: each
hash names its own.

Registry clients send Basic credentials on many requests; argon2 is deliberately slow and
memory-hard, so:

- a successful verification is remembered for a minute after its last use, keyed by a
  SHA-256 of the credential and the stored hash (a changed password invalidates it);
- when many requests bring the same credential at once (a cold or expired cache under
  load), one of them runs argon2 and the others wait for its answer;
- at most :data:`MAX_PARALLEL` argon2 runs happen at a time, so a burst of logins (or
  of guesses) cannot take more than that many times the memory of one.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MAX_PARALLEL = 2
TIME_COST = 5
MEMORY_COST = 7 * 1024
"""KiB."""
PARALLELISM = 1
_hasher = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_COST, parallelism=PARALLELISM)
_cache: dict[bytes, float] = {}
_inflight: dict[bytes, threading.Event] = {}
_cache_lock = threading.Lock()
_slots = threading.BoundedSemaphore(MAX_PARALLEL)
_CACHE_SECONDS = 60.0
_CACHE_MAX = 10_000


def hash_password(password: str) -> str:
    with _slots:
        return _hasher.hash(password)


def _remembered(key: bytes) -> bool:
    """Whether ``key`` verified recently (and keep it for another while); under the lock."""
    now = time.monotonic()
    expires = _cache.get(key)
    if expires is None or expires <= now:
        return False
    _cache[key] = now + _CACHE_SECONDS
    return True


def verify_password(stored_hash: str, password: str) -> bool:
    key = hashlib.sha256(f"{stored_hash}\0{password}".encode()).digest()
    with _cache_lock:
        if _remembered(key):
            return True
        running = _inflight.get(key)
        if running is None:
            running = _inflight[key] = threading.Event()
            leader = True
        else:
            leader = False
    if not leader:
        # Someone is checking this very credential: its answer is ours.
        running.wait()
        with _cache_lock:
            return _remembered(key)
    try:
        with _slots:
            try:
                _hasher.verify(stored_hash, password)
            except (VerificationError, InvalidHashError):
                return False
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()
            _cache[key] = time.monotonic() + _CACHE_SECONDS
        return True
    finally:
        with _cache_lock:
            _inflight.pop(key, None)
        running.set()


def generate_password(length: int = 24) -> str:
    return secrets.token_urlsafe(length)[:length]
