"""Password and secret hashing (argon2id), with a small cache of recent verifications.

Registry clients send Basic credentials on many requests; argon2 is deliberately slow,
so a successful verification is remembered for a minute, keyed by a SHA-256 of the
credential and the stored hash (a changed password invalidates it).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_cache: dict[bytes, float] = {}
_cache_lock = threading.Lock()
_CACHE_SECONDS = 60.0
_CACHE_MAX = 10_000


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    key = hashlib.sha256(f"{stored_hash}\0{password}".encode()).digest()
    now = time.monotonic()
    with _cache_lock:
        expires = _cache.get(key)
        if expires is not None and expires > now:
            return True
    try:
        _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = now + _CACHE_SECONDS
    return True


def generate_password(length: int = 24) -> str:
    return secrets.token_urlsafe(length)[:length]
