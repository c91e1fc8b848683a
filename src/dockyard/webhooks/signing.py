"""Standard Webhooks signatures (https://www.standardwebhooks.com), pure and I/O-free.

Receivers verify deliveries with any Standard Webhooks library, so the byte layout here
must match the specification exactly: the HMAC-SHA256 of ``{id}.{timestamp}.{body}``
keyed with the base64-decoded secret, sent as ``v1,<base64>``. While a secret is being
rotated both the old and the new secret sign, space separated in one header, so a
receiver still holding the old secret keeps accepting deliveries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's marker, not a secret
SECRET_BYTES = 32
"""256 bits, the security level of HMAC-SHA256 itself: a longer key adds nothing."""


def new_secret() -> str:
    """A fresh signing secret in the ``whsec_<base64>`` form receivers' libraries expect."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    encoded += "=" * (-len(encoded) % 4)  # other tools print secrets unpadded
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret must be base64, optionally after 'whsec_'") from exc
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one delivery with one secret.

    The id and timestamp are signed with the body so a captured delivery cannot be
    replayed under another id or at another time without the receiver noticing.
    """
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per secret, space separated.

    Two secrets sign during a rotation; the receiver accepts the delivery if any one
    signature verifies with the secret it holds.
    """
    if not secrets:
        raise ValueError("at least one secret must sign a delivery")
    return " ".join(sign(secret, message_id, timestamp, body) for secret in secrets)


def delivery_headers(
    secrets: Sequence[str],
    message_id: str,
    timestamp: int,
    body: bytes,
    *,
    version: str,
) -> dict[str, str]:
    """Every header a delivery is POSTed with (the body is always JSON)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": f"Dockyard-Webhook/{version}",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, message_id, timestamp, body),
    }
