"""Deliveries from each code host: valid, forged and unsigned; pings, tag pushes,
deletions and bodies that are not pushes."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
from typing import Any

import pytest

from dockyard.builds.hooks import (
    MAX_BODY,
    HookRejected,
    Ping,
    PushEvent,
    parse_hook,
    poll_events,
    split_ref,
)

SECRET = "hooksecret-6f1c2b"
SHA = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"
TAG_OBJECT = "b5d8c3f1e2a4567890abcdef1234567890abcdef"
ZERO = "0" * 40


def _hex(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def _github(event: str, body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": "sha256=" + _hex(body, secret),
        "Content-Type": "application/json",
    }


def _gitlab(event: str, token: str = SECRET) -> dict[str, str]:
    return {
        "X-Gitlab-Event": event,
        "X-Gitlab-Token": token,
        "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e",
    }


def _gitea(body: bytes, *, forgejo: bool = False, secret: str = SECRET) -> dict[str, str]:
    headers = {
        "X-Gitea-Event": "push",
        "X-Gitea-Delivery": "0a1b2c3d-gitea",
        "X-Gitea-Signature": _hex(body, secret),
    }
    if forgejo:
        headers |= {
            "X-Forgejo-Event": "push",
            "X-Forgejo-Delivery": "9f8e7d-forgejo",
            "X-Forgejo-Signature": _hex(body, secret),
        }
    return headers


def _reject(headers: dict[str, str], body: bytes, status: int, words: str) -> None:
    with pytest.raises(HookRejected) as caught:
        parse_hook(headers, body, SECRET)
    assert caught.value.status == status
    assert words in caught.value.message


# --- GitHub ------------------------------------------------------------------------------


def test_github_branch_push() -> None:
    body = _body(
        {
            "ref": "refs/heads/main",
            "before": ZERO,
            "after": SHA,
            "deleted": False,
            "head_commit": {"id": SHA, "message": "Fix"},
        }
    )
    assert parse_hook(_github("push", body), body, SECRET) == PushEvent(
        provider="github",
        ref="refs/heads/main",
        kind="branch",
        name="main",
        commit=SHA,
        deleted=False,
        delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958",
    )


def test_github_annotated_tag_push_builds_the_tagged_commit() -> None:
    body = _body({"ref": "refs/tags/release-v1.2", "after": TAG_OBJECT, "head_commit": {"id": SHA}})
    event = parse_hook(_github("push", body), body, SECRET)
    assert isinstance(event, PushEvent)
    assert (event.kind, event.name, event.commit) == ("tag", "release-v1.2", SHA)


def test_github_deletion_and_ping() -> None:
    body = _body({"ref": "refs/heads/gone", "after": ZERO, "deleted": True, "head_commit": None})
    event = parse_hook(_github("push", body), body, SECRET)
    assert isinstance(event, PushEvent)
    assert event.deleted
    assert event.commit == ""
    ping = _body({"zen": "Design for failure.", "hook_id": 1})
    assert parse_hook(_github("ping", ping), ping, SECRET) == Ping(
        "github", "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    )


def test_github_form_encoded_payload() -> None:
    payload = {"ref": "refs/heads/dev", "after": SHA, "head_commit": {"id": SHA}}
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    headers = _github("push", body) | {"Content-Type": "application/x-www-form-urlencoded"}
    event = parse_hook(headers, body, SECRET)
    assert isinstance(event, PushEvent)
    assert event.name == "dev"


def test_github_signatures_refused() -> None:
    body = _body({"ref": "refs/heads/main", "after": SHA})
    forged = _github("push", body, secret="not-the-secret")
    _reject(forged, body, 401, "does not match")
    tampered = _github("push", body)
    _reject(tampered, body.replace(b"main", b"evil"), 401, "does not match")
    missing = {k: v for k, v in _github("push", body).items() if k != "X-Hub-Signature-256"}
    _reject(missing, body, 401, "X-Hub-Signature-256 header is missing")
    sha1 = missing | {"X-Hub-Signature": "sha1=" + hmac.new(b"x", body, "sha1").hexdigest()}
    _reject(sha1, body, 401, "not SHA-1")
    _reject(_github("push", body) | {"X-Hub-Signature-256": "sha256=é"}, body, 401, "match")
    ping = _body({"zen": "x"})
    _reject(_github("ping", ping, secret="wrong"), ping, 401, "does not match")
    with pytest.raises(HookRejected) as caught:
        parse_hook(_github("push", body, secret=""), body, "")
    assert caught.value.status == 401


def test_signature_checked_before_the_body_is_read() -> None:
    body = b"{not json"
    _reject(_github("push", body, secret="wrong"), body, 401, "does not match")
    _reject(_github("push", body), body, 400, "not valid JSON")


# --- GitLab ------------------------------------------------------------------------------


def test_gitlab_push_and_tag_push() -> None:
    push = _body(
        {"object_kind": "push", "ref": "refs/heads/main", "after": SHA, "checkout_sha": SHA}
    )
    event = parse_hook(_gitlab("Push Hook"), push, SECRET)
    assert event == PushEvent(
        "gitlab",
        "refs/heads/main",
        "branch",
        "main",
        SHA,
        False,
        "13792a34-cac6-4fda-95a8-c58e00a3954e",
    )
    tag = _body(
        {"object_kind": "tag_push", "ref": "refs/tags/v2", "after": TAG_OBJECT, "checkout_sha": SHA}
    )
    event = parse_hook(_gitlab("Tag Push Hook"), tag, SECRET)
    assert isinstance(event, PushEvent)
    assert (event.kind, event.name, event.commit) == ("tag", "v2", SHA)


def test_gitlab_deletion() -> None:
    body = _body(
        {"object_kind": "tag_push", "ref": "refs/tags/v2", "after": ZERO, "checkout_sha": None}
    )
    event = parse_hook(_gitlab("Tag Push Hook"), body, SECRET)
    assert isinstance(event, PushEvent)
    assert event.deleted


def test_gitlab_tokens_refused() -> None:
    body = _body({"ref": "refs/heads/main", "after": SHA, "checkout_sha": SHA})
    _reject(_gitlab("Push Hook", token="guess"), body, 401, "does not match")
    _reject(_gitlab("Push Hook", token=SECRET + " "), body, 401, "does not match")
    headers = {k: v for k, v in _gitlab("Push Hook").items() if k != "X-Gitlab-Token"}
    _reject(headers, body, 401, "X-Gitlab-Token header is missing")
    _reject(_gitlab("Issue Hook"), body, 400, "not handled")
    no_checkout = _body({"ref": "refs/heads/main", "after": SHA, "checkout_sha": None})
    _reject(_gitlab("Push Hook"), no_checkout, 400, "checkout_sha must be a commit id")


# --- Gitea and Forgejo -------------------------------------------------------------------


@pytest.mark.parametrize("forgejo", [False, True])
def test_gitea_and_forgejo(forgejo: bool) -> None:
    body = _body({"ref": "refs/heads/main", "after": SHA, "head_commit": {"id": SHA}})
    event = parse_hook(_gitea(body, forgejo=forgejo), body, SECRET)
    assert isinstance(event, PushEvent)
    assert event.provider == ("forgejo" if forgejo else "gitea")
    assert event.delivery_id == ("9f8e7d-forgejo" if forgejo else "0a1b2c3d-gitea")
    assert event.commit == SHA

    forged = _gitea(body, forgejo=forgejo, secret="wrong")
    name = "X-Forgejo-Signature" if forgejo else "X-Gitea-Signature"
    _reject(forged, body, 401, f"{name} does not match")
    unsigned = {k: v for k, v in _gitea(body, forgejo=forgejo).items() if "Signature" not in k}
    _reject(unsigned, body, 401, "header is missing")


def test_gitea_tag_deletion() -> None:
    body = _body({"ref": "refs/tags/v1", "after": ZERO})
    event = parse_hook(_gitea(body), body, SECRET)
    assert isinstance(event, PushEvent)
    assert (event.kind, event.deleted) == ("tag", True)


# --- Generic -----------------------------------------------------------------------------


def test_generic_push_signed_as_github_signs() -> None:
    body = _body({"ref": "refs/tags/release-v3.1", "after": SHA.upper()})
    headers = {"X-Hub-Signature-256": "sha256=" + _hex(body), "X-Delivery-Id": "ci-run-77"}
    assert parse_hook(headers, body, SECRET) == PushEvent(
        "generic", "refs/tags/release-v3.1", "tag", "release-v3.1", SHA, False, "ci-run-77"
    )
    # Without a usable delivery id one is made up, a fresh one each time.
    plain = {"X-Hub-Signature-256": "sha256=" + _hex(body)}
    first = parse_hook(plain, body, SECRET)
    second = parse_hook(plain | {"X-Delivery-Id": "bad id\nwith newline"}, body, SECRET)
    assert isinstance(first, PushEvent)
    assert isinstance(second, PushEvent)
    assert len(first.delivery_id) == 32
    assert first.delivery_id != second.delivery_id
    _reject({}, body, 401, "X-Hub-Signature-256 header is missing")


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"[1, 2]", "must be a JSON object"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[" * 100 + b"]" * 100, "not valid JSON"),
        (_body({"after": SHA}), "ref must be a branch"),
        (_body({"ref": "refs/pull/1/head", "after": SHA}), "ref must be a branch"),
        (_body({"ref": "refs/heads/", "after": SHA}), "names no branch"),
        (_body({"ref": "refs/heads/a\nb", "after": SHA}), "control characters"),
        (_body({"ref": "refs/heads/" + "a" * 300, "after": SHA}), "at most 255"),
        (_body({"ref": "refs/heads/main", "after": "HEAD"}), "after must be a commit id"),
        (_body({"ref": "refs/heads/main"}), "after must be a commit id"),
        (_body({"ref": ["refs/heads/main"], "after": SHA}), "ref must be a branch"),
    ],
)
def test_malformed_bodies(payload: bytes, words: str) -> None:
    headers = {"X-Hub-Signature-256": "sha256=" + _hex(payload)}
    _reject(headers, payload, 400, words)


def test_oversized_body_and_other_events() -> None:
    big = b" " * (MAX_BODY + 1)
    _reject({"X-Hub-Signature-256": "sha256=" + _hex(big)}, big, 413, "larger than")
    body = _body({"action": "opened"})
    _reject(_github("issues", body), body, 400, "'issues' is not handled")


def test_poll_events_between_two_listings() -> None:
    before = {"refs/heads/main": SHA, "refs/heads/old": SHA, "refs/tags/v1": SHA}
    after = {"refs/heads/main": TAG_OBJECT, "refs/tags/v1": SHA, "refs/tags/v2": TAG_OBJECT}
    assert poll_events(before, after) == [
        PushEvent("poll", "refs/heads/main", "branch", "main", TAG_OBJECT, False, ""),
        PushEvent("poll", "refs/heads/old", "branch", "old", "", True, ""),
        PushEvent("poll", "refs/tags/v2", "tag", "v2", TAG_OBJECT, False, ""),
    ]
    assert poll_events(after, after) == []
    assert poll_events({}, {"refs/pull/1/head": SHA}) == []
    assert split_ref("refs/tags/a/b") == ("tag", "a/b")
    with pytest.raises(ValueError, match="neither a branch nor a tag"):
        split_ref("refs/heads/")
