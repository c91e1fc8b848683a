"""Docker registry bearer tokens: ES256 JWTs whose ``access`` claim lists grants.

The signing key is generated on first start, written to ``DATA_DIR/token-key.pem``
(mode 0600) and kept in the database as well, so every replica of a scaled-out
deployment signs and verifies with the same key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from dockyard.db.upsert import lock_keys

ALGORITHM = "ES256"
TEMP_USER = "cr_temp_user"
"""The ``docker login`` user name of temporary registry logins."""


class TokenError(ValueError):
    """A bearer token is malformed, forged, expired or for another service."""


@dataclass(frozen=True, slots=True)
class Grant:
    type: str
    name: str
    actions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    subject: str
    grants: tuple[Grant, ...]
    expires_at: float
    audience: str = ""
    issued_at: float = 0.0

    def names(self, type_: str, name: str) -> bool:
        """Whether the token speaks of ``type_:name`` at all (a scope it was asked for
        and granted nothing of still names it)."""
        return any(g.type == type_ and g.name == name for g in self.grants)

    def allows(self, type_: str, name: str, action: str) -> bool:
        return any(
            g.type == type_ and g.name == name and (action in g.actions or "*" in g.actions)
            for g in self.grants
        )


def _kid(public_key: ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")


def load_or_create_key(db: Database, data_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The instance's signing key: from the database, else the data dir, else new.
    Replicas starting at once on one new database look and insert under one lock, so
    they all end up with the key the first stored (the oldest, should there be more)."""
    path = data_dir / "token-key.pem"
    with db.write() as conn:
        lock_keys(conn, ["bootstrap:signing-key"])
        row = conn.execute(
            sa.select(t.signing_keys.c.private_pem)
            .order_by(t.signing_keys.c.created_at, t.signing_keys.c.kid)
            .limit(1)
        ).first()
        if row is not None:
            pem = row.private_pem.encode()
        elif path.exists():
            pem = path.read_bytes()
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        loaded = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise TokenError(f"{path} does not hold an EC private key")
        if row is None:
            conn.execute(
                sa.insert(t.signing_keys).values(
                    kid=_kid(loaded.public_key()), private_pem=pem.decode(), created_at=utcnow()
                )
            )
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process sharing the data dir wrote it first
            return loaded
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    return loaded


class TokenService:
    def __init__(self, key: ec.EllipticCurvePrivateKey, *, service: str, ttl: int) -> None:
        self._key = key
        self._public = key.public_key()
        self.kid = _kid(self._public)
        self.service = service
        self.ttl = ttl
        self._cache: dict[str, VerifiedToken] = {}
        self._lock = threading.Lock()

    @property
    def api_audience(self) -> str:
        """Audience of management-API session tokens (``/api/v1/auth/login``)."""
        return f"{self.service}-api"

    @property
    def sts_audience(self) -> str:
        """Audience of STS SecurityTokens (``POST /api/v1/sts/assume-role``)."""
        return f"{self.service}-sts"

    @property
    def login_audience(self) -> str:
        """Audience of temporary registry passwords (``POST /api/v1/tokens``)."""
        return f"{self.service}-registry-login"

    def issue(
        self,
        subject: str,
        grants: Iterable[Grant] = (),
        *,
        audience: str | None = None,
        ttl: int | None = None,
    ) -> tuple[str, int, float]:
        """Return (token, expires_in, issued_at). The audience defaults to the registry
        service (a Docker registry token); API sessions and temporary registry passwords
        use their own, so that one kind is never accepted as another."""
        now = time.time()
        ttl = self.ttl if ttl is None else ttl
        claims = {
            "iss": self.service,
            "sub": subject,
            "aud": audience or self.service,
            "exp": int(now) + ttl,
            "nbf": int(now) - 5,
            "iat": int(now),
            # The precise issue time, which sign-out compares (iat has whole seconds).
            "ist": round(now, 6),
            "jti": secrets.token_urlsafe(16),
            "access": [g.to_json() for g in grants],
        }
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})
        return token, ttl, now

    def verify(self, token: str, *, audience: str | None = None) -> VerifiedToken:
        now = time.time()
        audience = audience or self.service
        cached = self._cache.get(token)
        if cached is not None:
            if cached.audience != audience:
                raise TokenError("the token is not meant for this use")
            if cached.expires_at > now:
                return cached
            raise TokenError("the token has expired")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") not in (None, self.kid):
                raise TokenError("the token was signed by an unknown key")
            claims = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=self.service,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("the token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError("the token is not meant for this use") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenError("the token's signature does not verify") from exc
        except jwt.DecodeError as exc:
            # Its reason is the decoder's (a codec error, "Invalid header padding"): no use.
            raise TokenError("the token is malformed: it is no token Dockyard issued") from exc
        except jwt.PyJWTError as exc:
            raise TokenError(f"the token is invalid: {exc}") from exc
        verified = VerifiedToken(
            subject=str(claims["sub"]),
            grants=_parse_grants(claims.get("access", [])),
            expires_at=float(claims["exp"]),
            issued_at=float(claims.get("ist", claims["iat"])),
            audience=audience,
        )
        with self._lock:
            if len(self._cache) > 50_000:
                self._cache = {k: v for k, v in self._cache.items() if v.expires_at > now}
            self._cache[token] = verified
        return verified

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._public))
        jwk.update({"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": [jwk]}


def _parse_grants(raw: Any) -> tuple[Grant, ...]:
    if not isinstance(raw, list):
        raise TokenError("the token's access claim must be a list")
    grants = []
    for item in raw:
        if not isinstance(item, dict):
            raise TokenError("the token's access claim holds a non-object")
        acts = item.get("actions", [])
        if not isinstance(acts, list):
            raise TokenError("the token's access actions must be a list")
        grants.append(Grant(str(item.get("type")), str(item.get("name")), tuple(map(str, acts))))
    return tuple(grants)


@dataclass(frozen=True, slots=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]


def parse_scope(text: str) -> Scope:
    """``repository:ns/repo:pull,push`` (a name may hold a port-less host, never ':')."""
    type_, sep, rest = text.partition(":")
    name, sep2, acts = rest.rpartition(":")
    if not sep or not sep2 or not type_ or not name:
        raise ValueError(f"scope {text[:100]!r} must be type:name:actions")
    actions = tuple(a for a in acts.split(",") if a)
    return Scope(type_, name, actions)
