"""Push webhooks end to end: a real Dockyard server, real pushes over HTTP, a real
receiving server on loopback that checks signatures with its own implementation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.backends import all_backends
from tests.fixtures.oci import push_image
from tests.fixtures.server import DockyardServer, free_port, running_server
from tests.webhooks.receiver import receiver, verify

FAST = {
    "DOCKYARD_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
    "DOCKYARD_WEBHOOK_RETRY_DELAYS": "0.2,0.2,0.2,0.2,0.2,0.2,0.2",
    "DOCKYARD_WEBHOOK_TIMEOUT": "2",
}
HOOKS = "/api/v1/repositories/library/app/webhooks"
ACR_KEYS = {
    "push_data": {"digest", "pushed_at", "tag"},
    "repository": {
        "date_created",
        "name",
        "namespace",
        "region",
        "repo_authentication_type",
        "repo_full_name",
        "repo_origin_type",
        "repo_type",
    },
}


@pytest.fixture
def server(tmp_path: Path, backend_env: dict[str, str]) -> Iterator[DockyardServer]:
    with running_server(tmp_path, {**backend_env, **FAST}) as started:
        with started.client() as c:
            assert (
                c.post(
                    "/api/v1/repositories", json={"namespace": "library", "name": "app"}
                ).status_code
                == 201
            )
        yield started


def _create(c: httpx.Client, url: str, path: str = HOOKS, **fields: Any) -> dict[str, Any]:
    r = c.post(path, json={"name": "deploy", "url": url, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _deliveries(c: httpx.Client, hook: dict[str, Any], path: str = HOOKS) -> list[dict[str, Any]]:
    r = c.get(f"{path}/{hook['id']}/deliveries")
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def _settled(
    c: httpx.Client, hook: dict[str, Any], count: int, path: str = HOOKS, timeout: float = 30
) -> list[dict[str, Any]]:
    """The webhook's deliveries once ``count`` exist and none is pending or retrying."""
    deadline = time.monotonic() + timeout
    while True:
        items = _deliveries(c, hook, path)
        if len(items) >= count and all(i["status"] not in ("pending", "retrying") for i in items):
            return items
        assert time.monotonic() < deadline, items
        time.sleep(0.1)


@all_backends
def test_a_push_is_delivered_signed_in_the_acr_format(server: DockyardServer) -> None:
    with receiver() as rx, server.client() as c:
        hook = _create(c, rx.url)
        assert hook["secret"].startswith("whsec_")
        assert hook["trigger"] == {"type": "all"}
        assert hook["events"] == ["push"]
        image = push_image(c, "library/app", "1.0")
        [got] = rx.wait_for(1)
        assert verify(hook["secret"], got.headers, got.body)
        assert got.headers["content-type"] == "application/json"
        assert got.headers["user-agent"].startswith("Dockyard-Webhook/")
        payload = got.json()
        assert {k: set(v) for k, v in payload.items()} == ACR_KEYS
        assert payload["push_data"]["digest"] == image.digest
        assert payload["push_data"]["tag"] == "1.0"
        assert time.strptime(payload["push_data"]["pushed_at"], "%Y-%m-%d %H:%M:%S")
        repo = payload["repository"]
        assert (repo["namespace"], repo["name"], repo["repo_full_name"]) == (
            "library",
            "app",
            "library/app",
        )
        assert (repo["region"], repo["repo_type"]) == ("local", "PRIVATE")

        [delivery] = _settled(c, hook, 1)
        assert delivery["status"] == "succeeded"
        detail = c.get(f"{HOOKS}/{hook['id']}/deliveries/{delivery['id']}").json()
        assert detail["attempts"] == 1
        assert len(detail["attempt_log"]) == 1
        assert detail["attempt_log"][0]["status"] == 200
        assert detail["request"]["url"] == rx.url
        assert detail["request"]["headers"]["webhook-signature"] == "********"
        assert detail["request"]["headers"]["webhook-id"] == got.headers["webhook-id"]
        assert json.loads(detail["request"]["body"]) == payload
        assert detail["response"]["status"] == 200
        assert json.loads(detail["response"]["body"]) == {"n": 1}
        # The listing shows the last delivery; the secret is never shown again.
        listed = c.get(HOOKS).json()["items"][0]
        assert listed["last_delivery"]["status"] == "succeeded"
        assert "secret" not in listed
        assert "secret" not in c.get(f"{HOOKS}/{hook['id']}").json()

        # The push is in the account's events, with who made it.
        events = c.get("/api/v1/events", params={"type": "push"}).json()["items"]
        assert events[0]["digest"] == image.digest
        assert events[0]["actor"] == "admin"


def test_failed_attempts_are_retried_until_one_succeeds(server: DockyardServer) -> None:
    with receiver(fail_first=2) as rx, server.client() as c:
        hook = _create(c, rx.url)
        push_image(c, "library/app", "1.0")
        got = rx.wait_for(3)
        assert len({r.headers["webhook-id"] for r in got}) == 1  # one delivery, retried
        assert all(verify(hook["secret"], r.headers, r.body) for r in got)
        [delivery] = _settled(c, hook, 1)
        detail = c.get(f"{HOOKS}/{hook['id']}/deliveries/{delivery['id']}").json()
        assert detail["status"] == "succeeded"
        assert [a["status"] for a in detail["attempt_log"]] == [500, 500, 200]


def test_triggers_and_untriggered_deliveries(server: DockyardServer) -> None:
    with receiver() as rx, server.client() as c:
        listed = _create(c, rx.url, trigger={"type": "tag_list", "tags": ["1.0", "latest"]})
        regex = _create(c, rx.url, trigger={"type": "tag_regex", "regex": "release-v.*"})
        push_image(c, "library/app", "1.0")
        push_image(c, "library/app", "release-v2")
        rx.wait_for(2)
        # By event (the fan-outs of two pushes may run in either order).
        one = sorted(_settled(c, listed, 2), key=lambda d: d["event_id"])
        assert [d["status"] for d in one] == ["succeeded", "untriggered"]
        assert "'release-v2' is not in the webhook's tag list" in one[1]["reason"]
        two = sorted(_settled(c, regex, 2), key=lambda d: d["event_id"])
        assert [d["status"] for d in two] == ["untriggered", "succeeded"]
        assert "does not match the regular expression" in two[0]["reason"]
        untriggered = c.get(
            f"{HOOKS}/{regex['id']}/deliveries", params={"status": "untriggered"}
        ).json()["items"]
        assert len(untriggered) == 1

        bad = [
            ({"type": "tag_regex", "regex": "(a)\\1"}, "RE2"),
            ({"type": "tag_list", "tags": []}, "trigger.tags"),
            ({"type": "tag_list", "tags": [str(i) for i in range(11)]}, "trigger.tags"),
            ({"type": "sometimes"}, "trigger.type"),
        ]
        for trigger, message in bad:
            r = c.post(HOOKS, json={"name": "x", "url": rx.url, "trigger": trigger})
            assert r.status_code == 400, r.text
            assert message in r.json()["detail"], r.text
        # A pattern that backtracks catastrophically elsewhere is linear here.
        slow = _create(c, rx.url, trigger={"type": "tag_regex", "regex": "(a+)+$"})
        started = time.monotonic()
        push_image(c, "library/app", "a" * 120 + "b")
        assert _settled(c, slow, 1)[0]["status"] == "untriggered"
        assert time.monotonic() - started < 10


def test_namespace_webhooks_cloudevents_and_other_event_types(server: DockyardServer) -> None:
    ns_hooks = "/api/v1/namespaces/library/webhooks"
    with receiver() as rx, server.client() as c:
        hook = _create(
            c,
            rx.url,
            path=ns_hooks,
            format="cloudevents",
            events=["push", "tag_delete", "repository_create"],
        )
        push_image(c, "library/other", "v1")  # creates the repository, then pushes
        assert c.delete("/api/v1/repositories/library/other/tags/v1").status_code == 204
        got = rx.wait_for(3)
        events = sorted((r.json() for r in got), key=lambda e: int(e["id"]))
        assert [e["type"] for e in events] == [
            "com.dockyard.repository.created",
            "com.dockyard.image.pushed",
            "com.dockyard.tag.deleted",
        ]
        for event in events:
            assert event["specversion"] == "1.0"
            assert {"id", "source", "type", "time", "datacontenttype", "data"} <= set(event)
            assert event["data"]["namespace"] == "library"
            assert event["data"]["repository"] == "other"
        assert events[2]["data"]["tag"] == "v1"
        assert all(verify(hook["secret"], r.headers, r.body) for r in got)


def test_the_guard_refuses_internal_addresses(tmp_path: Path) -> None:
    with running_server(tmp_path) as server, server.client() as c:
        c.post("/api/v1/repositories", json={"namespace": "library", "name": "app"})
        for url in (
            f"http://127.0.0.1:{free_port()}/hook",
            "http://localhost/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/hook",
            "ftp://example.com/hook",
        ):
            r = c.post(HOOKS, json={"name": "x", "url": url})
            assert r.status_code == 400, (url, r.text)
            if "ftp" not in url:
                assert "DOCKYARD_WEBHOOK_ALLOW_NETWORKS" in r.json()["detail"], r.text


def test_a_redirect_to_loopback_is_not_followed(server: DockyardServer) -> None:
    with receiver(status=302) as rx, server.client() as c:
        hook = _create(c, rx.url)
        r = c.post(f"{HOOKS}/{hook['id']}/test")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "failed"
        assert r.json()["response"]["status"] == 302
        assert len(rx.received) == 1


def test_test_rotate_redeliver_and_gone(server: DockyardServer) -> None:
    with receiver() as rx, server.client() as c:
        hook = _create(c, rx.url, headers={"Authorization": "Bearer receiver-token"})
        assert hook["headers"] == {"Authorization": "********"}
        r = c.post(f"{HOOKS}/{hook['id']}/test")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "succeeded", r.text
        [sample] = rx.wait_for(1)
        assert sample.headers["authorization"] == "Bearer receiver-token"
        assert sample.json()["push_data"]["tag"] == "test"
        assert r.json()["request"]["headers"]["Authorization"] == "********"

        rotated = c.post(f"{HOOKS}/{hook['id']}/rotate-secret").json()["secret"]
        assert rotated != hook["secret"]
        c.post(f"{HOOKS}/{hook['id']}/test")
        second = rx.wait_for(2)[1]
        # Both secrets sign for a day after a rotation.
        assert verify(rotated, second.headers, second.body)
        assert verify(hook["secret"], second.headers, second.body)

        push_image(c, "library/app", "1.0")
        third = rx.wait_for(3)[2]
        [pushed] = [d for d in _settled(c, hook, 3) if d["event_type"] == "push" and d["event_id"]]
        r = c.post(f"{HOOKS}/{hook['id']}/deliveries/{pushed['id']}/redeliver")
        assert r.status_code == 202, r.text
        again = rx.wait_for(4)[3]
        assert again.headers["webhook-id"] == third.headers["webhook-id"]
        assert again.body == third.body

        # 410 Gone: the receiver says it is gone for good.
        rx.status = 410
        push_image(c, "library/app", "2.0")
        rx.wait_for(5)
        deadline = time.monotonic() + 20
        while c.get(f"{HOOKS}/{hook['id']}").json()["enabled"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert "410" in c.get(f"{HOOKS}/{hook['id']}").json()["disabled_reason"]
        push_image(c, "library/app", "3.0")
        time.sleep(1)
        assert len(rx.received) == 5
        patched = c.patch(f"{HOOKS}/{hook['id']}", json={"enabled": True}).json()
        assert patched["enabled"]
        assert patched["disabled_reason"] is None


def test_bad_webhook_input(server: DockyardServer) -> None:
    with server.client() as c:
        cases = [
            ({"url": "http://127.0.0.1/"}, "name"),
            ({"name": "", "url": "http://127.0.0.1/"}, "name"),
            ({"name": "x" * 65, "url": "http://127.0.0.1/"}, "name"),
            ({"name": "x", "url": "http://127.0.0.1/", "events": ["pushed"]}, "events[0]"),
            ({"name": "x", "url": "http://127.0.0.1/", "events": []}, "events"),
            ({"name": "x", "url": "http://127.0.0.1/", "format": "xml"}, "format"),
            ({"name": "x", "url": "http://127.0.0.1/", "headers": {"Host": "a"}}, "Host"),
            ({"name": "x", "url": "http://127.0.0.1/", "headers": {"X-A": "a\r\nb"}}, "X-A"),
            ({"name": "x", "url": "http://127.0.0.1/", "colour": "red"}, "colour"),
        ]
        for body, word in cases:
            r = c.post(HOOKS, json=body)
            assert r.status_code == 400, r.text
            assert word in r.json()["detail"], (body, r.text)
        missing = {"name": "x", "url": "http://127.0.0.1/"}
        assert c.post("/api/v1/repositories/library/nope/webhooks", json=missing).status_code == 404
        assert c.get(f"{HOOKS}/12345").status_code == 404
        assert c.get(f"{HOOKS}/abc").status_code == 404


def test_kill_right_after_the_push_loses_no_delivery(tmp_path: Path) -> None:
    """The server runs no jobs, so nothing can be delivered before it is killed: the
    delivery after the restart comes from the event committed with the push."""
    with receiver() as rx:
        server = running_server(tmp_path, {**FAST, "DOCKYARD_JOB_WORKERS": "0"})
        with server as s, s.client() as c:
            c.post("/api/v1/repositories", json={"namespace": "library", "name": "app"})
            hook = _create(c, rx.url)
            image = push_image(c, "library/app", "1.0")
            s.kill()
            s.env["DOCKYARD_JOB_WORKERS"] = "2"
            s.start()
            [got] = rx.wait_for(1)
            assert got.json()["push_data"]["digest"] == image.digest
            assert verify(hook["secret"], got.headers, got.body)


def test_a_receiver_that_comes_up_later_gets_the_delivery(server: DockyardServer) -> None:
    port = free_port()
    with server.client() as c:
        hook = _create(c, f"http://127.0.0.1:{port}/hook")
        push_image(c, "library/app", "1.0")
        deadline = time.monotonic() + 20
        while not (items := _deliveries(c, hook)) or items[0]["status"] != "retrying":
            assert time.monotonic() < deadline, items
            time.sleep(0.05)
        detail = c.get(f"{HOOKS}/{hook['id']}/deliveries/{items[0]['id']}").json()
        assert "cannot connect" in detail["attempt_log"][0]["error"]
        with receiver(port=port) as rx:
            [got] = rx.wait_for(1)
            assert verify(hook["secret"], got.headers, got.body)
            assert _settled(c, hook, 1)[0]["status"] == "succeeded"


def test_read_only_users_see_webhooks_without_secrets(server: DockyardServer) -> None:
    with server.client() as c:
        hook = _create(c, "http://127.0.0.1:9/hook", headers={"X-Token": "t0p"})
        r = c.post("/api/v1/ram/users", json={"name": "viewer", "password": "viewer-password-1"})
        assert r.status_code == 201, r.text
        r = c.put("/api/v1/repositories/library/app/permissions/viewer", json={"role": "read-only"})
        assert r.status_code == 200, r.text
    with server.client(auth=("viewer@admin", "viewer-password-1")) as viewer:
        seen = viewer.get(f"{HOOKS}/{hook['id']}")
        assert seen.status_code == 200, seen.text
        assert seen.json()["headers"] == {"X-Token": "********"}
        assert "secret" not in seen.json()
        assert viewer.post(HOOKS, json={"name": "x", "url": "http://127.0.0.1/"}).status_code == 403
        assert viewer.delete(f"{HOOKS}/{hook['id']}").status_code == 403
        assert viewer.post(f"{HOOKS}/{hook['id']}/rotate-secret").status_code == 403


def test_a_slow_receiver_does_not_delay_other_webhooks(server: DockyardServer) -> None:
    """Deliveries of one webhook take at most a few of the worker's slots: while a
    receiver takes 1.5 s per delivery, another webhook's arrive at once."""
    with receiver(delay=1.5) as slow, receiver() as fast, server.client() as c:
        _create(c, slow.url)
        _create(c, fast.url)
        started = time.monotonic()
        for n in range(12):
            push_image(c, "library/app", f"v{n}", layers=1, layer_size=64)
        fast.wait_for(12, timeout=20)
        fast_done = time.monotonic() - started
        slow.wait_for(12, timeout=60)
        slow_done = time.monotonic() - started
        # 12 slow deliveries, at most 4 at a time: the last round starts after two
        # rounds of 1.5 s.
        assert slow_done >= 3.0
        assert fast_done < slow_done - 1.5, (fast_done, slow_done)
