"""The small print of refusals: problem titles, one message per field, bodies that a
route takes no fields from, garbage Bearer tokens, a bad page size on /v2/."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.server import DockyardServer


def test_problem_titles_are_the_status_phrases(registry: DockyardServer) -> None:
    with registry.client() as c:
        cases = [
            (c.get("/api/v1/namespaces/nothing-here"), 404, "Not Found"),
            (c.post("/api/v1/namespaces", json={"name": "Bad Name"}), 400, "Bad Request"),
            (c.post("/api/v1/namespaces", json={"name": "library"}), 409, "Conflict"),
            (c.get("/api/v1/repositories/library/nothing/tags/x"), 404, "Not Found"),
            (c.delete("/api/v1/openapi.json"), 405, "Method Not Allowed"),
            (
                c.post(
                    "/api/v1/namespaces/library/webhooks",
                    json={"name": "w", "url": "ftp://example.com/", "events": ["push"]},
                ),
                400,
                "Bad Request",
            ),
        ]
        for response, status, title in cases:
            assert response.status_code == status, response.text
            assert response.json()["title"] == title, response.text


def test_one_length_message_per_field(registry: DockyardServer) -> None:
    with registry.client() as c:
        for name in ("a", "x" * 31, "x" * 300):
            r = c.post("/api/v1/namespaces", json={"name": name})
            assert r.status_code == 400
            assert r.json()["detail"] == "a namespace name has 2 to 30 characters"
        long_url = "https://example.com/" + "a" * 2980
        r = c.post(
            "/api/v1/namespaces/library/webhooks",
            json={"name": "w", "url": long_url, "events": ["push"]},
        )
        assert r.status_code == 400
        assert r.json()["detail"] == "the URL is 3000 characters long; at most 2048"


@pytest.mark.parametrize("path", ["/api/v1/tokens", "/api/v1/me/access-keys"])
def test_a_route_without_fields_refuses_a_body_it_cannot_read(
    registry: DockyardServer, path: str
) -> None:
    with registry.client() as c:
        broken = c.post(path, content=b'{"broken', headers={"content-type": "application/json"})
        assert broken.status_code == 400
        assert "not valid JSON" in broken.json()["detail"]
        field = c.post(path, json={"ttl": 60})
        assert field.status_code == 400
        assert field.json()["detail"] == "unknown field 'ttl'; this takes no fields"
        assert c.post(path).status_code == 201
        assert c.post(path, json={}).status_code == 201


MALFORMED = "the token is malformed: it is no token Dockyard issued"


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        (b"garbage", MALFORMED),
        (b"\xff\xfe.abc.def", MALFORMED),  # once "'utf-8' codec can't decode byte 0xff…"
        (b"a.b.c", MALFORMED),
        (b"eyJhbGciOiJFUzI1NiJ9.e30.AAAA", "the token's signature does not verify"),
    ],
)
def test_a_garbage_bearer_token_gets_a_plain_401(
    registry: DockyardServer, token: bytes, detail: str
) -> None:
    r = httpx.get(f"{registry.url}/api/v1/me", headers={"authorization": b"Bearer " + token})
    assert r.status_code == 401
    assert r.json() == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": detail,
    }


@pytest.mark.parametrize("n", ["-1", "abc", "100001"])
def test_a_bad_page_size_on_v2_is_a_clear_400(registry: DockyardServer, n: str) -> None:
    with registry.client() as c:
        for path in ("/v2/library/anything/tags/list", "/v2/_catalog"):
            r = c.get(path, params={"n": n})
            assert r.status_code == 400
            assert r.json() == {
                "errors": [
                    {
                        "code": "PAGINATION_NUMBER_INVALID",
                        "message": f"n (the page size) must be an integer from 0 to 100000, "
                        f"not {n!r}",
                    }
                ]
            }
