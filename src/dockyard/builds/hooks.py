"""Push notifications from code hosts: verify who sent them, read which ref moved where.

One endpoint per source (``/api/v1/hooks/git/{hook_id}``) takes deliveries from any
host; the headers say which host it is, and each host proves the delivery with the
source's hook secret its own way:

- GitHub: ``X-GitHub-Event`` (``push``, ``ping``), ``X-Hub-Signature-256:
  sha256=<hex HMAC-SHA256 of the body>``, ``X-GitHub-Delivery``;
- GitLab: ``X-Gitlab-Event`` (``Push Hook``, ``Tag Push Hook``), the secret itself in
  ``X-Gitlab-Token``, ``X-Gitlab-Event-UUID``; the commit is ``checkout_sha`` (for a tag,
  the commit it points to, where ``after`` is the tag object);
- Gitea and Forgejo: ``X-Gitea-Event`` / ``X-Forgejo-Event``, ``X-Gitea-Signature`` /
  ``X-Forgejo-Signature`` (hex HMAC-SHA256), ``X-Gitea-Delivery`` / ``X-Forgejo-Delivery``;
  Forgejo sends the Gitea headers too, so it is recognised first;
- generic (any script): ``{"ref": "refs/heads/main", "after": "<sha>"}`` signed as GitHub
  signs, with an optional ``X-Delivery-Id``.

The signature is checked before the body is read at all, in constant time, so an
unsigned sender learns nothing about what the parser would accept. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs

from dockyard import jsontext

MAX_BODY: Final = 4 * 1024 * 1024
"""The largest delivery read: GitHub lists at most 20 commits in a push, so real
payloads stay far below this; the HTTP layer reads at most ``MAX_BODY + 1`` bytes."""

MAX_REF_LENGTH: Final = 255
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_DELIVERY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HEADS, _TAGS = "refs/heads/", "refs/tags/"


@dataclass(frozen=True)
class PushEvent:
    """A ref that moved: build it (or, when ``deleted``, build nothing).

    ``kind`` is ``branch`` or ``tag``; ``name`` the ref without its ``refs/heads/`` or
    ``refs/tags/``; ``commit`` the commit to build ("" when ``deleted``).
    """

    provider: str
    ref: str
    kind: str
    name: str
    commit: str
    deleted: bool
    delivery_id: str


@dataclass(frozen=True)
class Ping:
    """A host checking the hook works (GitHub sends one when the hook is made)."""

    provider: str
    delivery_id: str


class HookRejected(Exception):
    """A delivery refused: ``status`` 401 (bad or missing signature or token), 400 (a
    payload that is not a push), 413 (a body over :data:`MAX_BODY`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class _Host:
    provider: str
    event_header: str
    delivery_header: str


_GITHUB = _Host("github", "x-github-event", "x-github-delivery")
_GITLAB = _Host("gitlab", "x-gitlab-event", "x-gitlab-event-uuid")
_GITEA = _Host("gitea", "x-gitea-event", "x-gitea-delivery")
_FORGEJO = _Host("forgejo", "x-forgejo-event", "x-forgejo-delivery")
_GENERIC = _Host("generic", "", "x-delivery-id")

_GITLAB_PUSH_EVENTS: Final = frozenset({"Push Hook", "Tag Push Hook"})


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _host(headers: dict[str, str]) -> _Host:
    if "x-forgejo-event" in headers or "x-forgejo-signature" in headers:
        return _FORGEJO
    if "x-gitea-event" in headers or "x-gitea-signature" in headers:
        return _GITEA
    if "x-gitlab-event" in headers or "x-gitlab-token" in headers:
        return _GITLAB
    if "x-github-event" in headers:
        return _GITHUB
    return _GENERIC


def _equal(given: str, expected: str) -> bool:
    """Constant-time comparison of header text (any characters) with the expected value."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def _verify(host: _Host, headers: dict[str, str], body: bytes, secret: str) -> None:
    """Check the delivery's proof of the secret, or raise 401 saying what was wrong."""
    if not secret:
        raise HookRejected(401, "this hook has no secret, so no delivery can be verified")
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if host is _GITLAB:
        token = headers.get("x-gitlab-token")
        if token is None:
            raise HookRejected(401, "the X-Gitlab-Token header is missing: set the secret token")
        if not _equal(token, secret):
            raise HookRejected(401, "the X-Gitlab-Token does not match the hook secret")
        return
    if host in (_GITEA, _FORGEJO):
        name = "X-Forgejo-Signature" if host is _FORGEJO else "X-Gitea-Signature"
        signature = headers.get(name.lower())
        if signature is None and host is _FORGEJO:
            name, signature = "X-Gitea-Signature", headers.get("x-gitea-signature")
        if signature is None:
            raise HookRejected(401, f"the {name} header is missing: set the hook's secret")
        if not _equal(signature.strip().lower(), digest):
            raise HookRejected(401, f"the {name} does not match the body and the hook secret")
        return
    signature = headers.get("x-hub-signature-256")
    if signature is None:
        if "x-hub-signature" in headers:
            raise HookRejected(
                401, "only SHA-256 signatures (X-Hub-Signature-256) are accepted, not SHA-1"
            )
        raise HookRejected(
            401, "the X-Hub-Signature-256 header is missing: sign the body with the hook secret"
        )
    if not _equal(signature.strip().lower(), "sha256=" + digest):
        raise HookRejected(
            401, "the X-Hub-Signature-256 does not match the body and the hook secret"
        )


def _payload(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The JSON object delivered (GitHub may send it form-encoded as ``payload=``)."""
    try:
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
            if len(fields.get("payload", [])) != 1:
                raise ValueError("a form-encoded delivery needs exactly one payload field")
            value = jsontext.loads(fields["payload"][0])
        else:
            value = jsontext.loads(body)
    except ValueError as exc:
        raise HookRejected(400, f"the body is not valid JSON: {str(exc)[:200]}") from exc
    if not isinstance(value, dict):
        raise HookRejected(400, "the body must be a JSON object")
    return value


def _sha(value: object, field: str) -> str:
    if not isinstance(value, str) or not _SHA.fullmatch(value.lower()):
        raise HookRejected(400, f"{field} must be a commit id (40 or 64 hexadecimal digits)")
    return value.lower()


def _delivery(host: _Host, headers: dict[str, str]) -> str:
    given = headers.get(host.delivery_header, "").strip()
    if _DELIVERY.fullmatch(given):
        return given
    return uuid.uuid4().hex


def _push(
    provider: str, payload: dict[str, Any], *, commit_field: str, delivery_id: str
) -> PushEvent:
    """A :class:`PushEvent` from the fields every host names alike: ``ref``, ``after``,
    and the commit to build in ``commit_field`` (``head_commit`` id or ``checkout_sha``)."""
    ref = payload.get("ref")
    if not isinstance(ref, str) or not ref.startswith((_HEADS, _TAGS)):
        raise HookRejected(400, "ref must be a branch (refs/heads/…) or a tag (refs/tags/…)")
    if len(ref) > MAX_REF_LENGTH or any(c < " " or c == "\x7f" for c in ref):
        raise HookRejected(
            400, f"ref must be at most {MAX_REF_LENGTH} characters, without control characters"
        )
    try:
        kind, name = split_ref(ref)
    except ValueError:
        raise HookRejected(400, "ref names no branch or tag") from None
    after = _sha(payload.get("after"), "after")
    deleted = payload.get("deleted") is True or set(after) == {"0"}
    if deleted:
        return PushEvent(provider, ref, kind, name, "", True, delivery_id)
    commit = after
    if commit_field == "head_commit":
        head = payload.get("head_commit")
        if isinstance(head, dict) and head.get("id") is not None:
            commit = _sha(head.get("id"), "head_commit.id")
    elif commit_field == "checkout_sha":
        commit = _sha(payload.get("checkout_sha"), "checkout_sha")
    return PushEvent(provider, ref, kind, name, commit, False, delivery_id)


def parse_hook(headers: Mapping[str, str], body: bytes, secret: str) -> PushEvent | Ping:
    """Verify a delivery with the hook ``secret`` and say what it reports.

    :raises HookRejected: 401 for a missing or wrong signature (checked first), 413 for
        a body over :data:`MAX_BODY`, 400 for anything that is not a push or a ping.
    """
    lowered = _lower(headers)
    host = _host(lowered)
    if len(body) > MAX_BODY:
        raise HookRejected(413, f"the body is larger than {MAX_BODY // (1024 * 1024)} MiB")
    _verify(host, lowered, body, secret)
    delivery_id = _delivery(host, lowered)
    event = lowered.get(host.event_header, "").strip() if host.event_header else "push"
    if host is _GITLAB:
        if event not in _GITLAB_PUSH_EVENTS:
            raise HookRejected(
                400, f"GitLab event {event[:60]!r} is not handled: send push and tag push events"
            )
        payload = _payload(lowered, body)
        return _push(host.provider, payload, commit_field="checkout_sha", delivery_id=delivery_id)
    if event == "ping":
        return Ping(host.provider, delivery_id)
    if event != "push":
        raise HookRejected(
            400, f"{host.provider} event {event[:60]!r} is not handled: send push events only"
        )
    payload = _payload(lowered, body)
    commit_field = "after" if host is _GENERIC else "head_commit"
    return _push(host.provider, payload, commit_field=commit_field, delivery_id=delivery_id)


def split_ref(ref: str) -> tuple[str, str]:
    """``("branch", "main")`` for ``refs/heads/main``, ``("tag", "v1")`` for
    ``refs/tags/v1``.

    :raises ValueError: for any other ref.
    """
    if ref.startswith(_HEADS) and len(ref) > len(_HEADS):
        return "branch", ref[len(_HEADS) :]
    if ref.startswith(_TAGS) and len(ref) > len(_TAGS):
        return "tag", ref[len(_TAGS) :]
    raise ValueError(f"{ref[:80]!r} is neither a branch nor a tag")


def poll_events(before: Mapping[str, str], after: Mapping[str, str]) -> list[PushEvent]:
    """What a poll saw happen between two ``ls-remote`` answers, as the pushes a hook
    would have reported (provider ``poll``, no delivery id): new and moved refs, and
    deleted ones (``deleted=True``), sorted by ref. Refs other than branches and tags
    are ignored."""
    events: list[PushEvent] = []
    for ref in sorted(set(before) | set(after)):
        old, new = before.get(ref), after.get(ref)
        if old == new:
            continue
        try:
            kind, name = split_ref(ref)
        except ValueError:
            continue
        if new is None:
            events.append(PushEvent("poll", ref, kind, name, "", True, ""))
        else:
            events.append(PushEvent("poll", ref, kind, name, new, False, ""))
    return events
