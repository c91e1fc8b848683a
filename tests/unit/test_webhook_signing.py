"""Standard Webhooks signatures, verified by the independent ``standardwebhooks`` library."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from dockyard.webhooks.signing import (
    delivery_headers,
    new_secret,
    sign,
    signature_header,
)

BODY = b'{"push_data":{"tag":"1.0"},"caf\xc3\xa9":true}'


def test_new_secret_is_whsec_and_32_random_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert first != second


def test_sign_matches_the_specification_example() -> None:
    # The example in the Standard Webhooks specification and its reference libraries.
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_secret_without_prefix_or_padding_signs_the_same() -> None:
    secret = new_secret()
    bare = secret.removeprefix("whsec_")
    assert sign(bare, "m", 1, b"x") == sign(secret, "m", 1, b"x")
    assert sign(bare.rstrip("="), "m", 1, b"x") == sign(secret, "m", 1, b"x")


@pytest.mark.parametrize("secret", ["whsec_", "", "whsec_not base64!"])
def test_unusable_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        sign(secret, "m", 1, b"x")


def test_delivery_headers_verify_with_the_reference_library() -> None:
    secret = new_secret()
    headers = delivery_headers([secret], "msg_1", int(time.time()), BODY, version="1.2.3")
    assert set(headers) == {
        "Content-Type",
        "User-Agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "Dockyard-Webhook/1.2.3"
    assert headers["webhook-id"] == "msg_1"
    assert Webhook(secret).verify(BODY, headers) == {"push_data": {"tag": "1.0"}, "café": True}


def test_during_rotation_either_secret_verifies() -> None:
    old, new, stranger = new_secret(), new_secret(), new_secret()
    headers = delivery_headers([old, new], "msg_2", int(time.time()), BODY, version="1")
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger).verify(BODY, headers)


def test_tampering_fails_verification() -> None:
    secret = new_secret()
    now = int(time.time())
    headers = delivery_headers([secret], "msg_3", now, BODY, version="1")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"1.0", b"6.6"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_4"})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-timestamp": str(now + 1)})


def test_signature_header_joins_one_signature_per_secret() -> None:
    a, b = new_secret(), new_secret()
    assert (
        signature_header([a, b], "m", 7, b"{}")
        == f"{sign(a, 'm', 7, b'{}')} {sign(b, 'm', 7, b'{}')}"
    )
    with pytest.raises(ValueError, match="at least one secret"):
        signature_header([], "m", 7, b"{}")
