"""Content digests (``algorithm:hex``) as the OCI image spec defines them.

Only the algorithms a registry must verify are accepted: sha256 and sha512. A digest
that is well formed but uses another algorithm is *unsupported*, which the registry
reports differently from a malformed one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"^[a-f0-9]+$")


class DigestError(ValueError):
    """A string is not a digest this registry can verify."""


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse and validate ``text``; raise :class:`DigestError` saying why it is bad."""
        if len(text) > 256 or not _GRAMMAR.fullmatch(text):
            raise DigestError(f"{text[:80]!r} is not a digest of the form algorithm:hex")
        algorithm, _, encoded = text.partition(":")
        expected = _HEX_LENGTHS.get(algorithm)
        if expected is None:
            raise DigestError(f"digest algorithm {algorithm!r} is not supported (sha256, sha512)")
        if len(encoded) != expected or not _HEX.fullmatch(encoded):
            raise DigestError(f"a {algorithm} digest has {expected} lowercase hex characters")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        h = new_hasher(algorithm)
        h.update(data)
        return cls(algorithm, h.hexdigest())


def new_hasher(algorithm: str = "sha256") -> Hasher:
    if algorithm not in _HEX_LENGTHS:
        raise DigestError(f"digest algorithm {algorithm!r} is not supported (sha256, sha512)")
    return hashlib.new(algorithm)
