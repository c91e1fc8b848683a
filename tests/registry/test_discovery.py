"""Content discovery: tag lists and the catalog with pagination, and the referrers API."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fixtures.server import DockyardServer
from tests.registry.helpers import (
    EMPTY_JSON,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Pushed,
    assert_error,
    connect,
    descriptor,
    digest_of,
    dumps,
    index_body,
    next_link,
    push_blob,
    push_image,
    push_manifest,
    unique,
)

TAGS = ["latest", "v1", "v1.0", "v10", "v2", "V3", "0.1", "_under", "a-b", "a_b", "a.b", "zz"]


@pytest.fixture(scope="module")
def tagged(registry: DockyardServer) -> str:
    """A repository with one image under every tag of ``TAGS``; tests only read it."""
    repo = f"library/{unique('tagged')}"
    with connect(registry) as client:
        pushed = push_image(client, repo, TAGS[0])
        for tag in TAGS[1:]:
            push_manifest(client, repo, tag, pushed.body, pushed.media_type)
    return repo


def test_tags_list_is_sorted(client: httpx.Client, tagged: str) -> None:
    r = client.get(f"/v2/{tagged}/tags/list")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"name": tagged, "tags": sorted(TAGS)}
    assert "Link" not in r.headers


@pytest.mark.parametrize("n", [1, 2, 5, 11])
def test_tags_pagination_with_link(client: httpx.Client, tagged: str, n: int) -> None:
    r = client.get(f"/v2/{tagged}/tags/list", params={"n": n})
    assert r.status_code == 200
    seen = list(r.json()["tags"])
    assert seen == sorted(TAGS)[:n]
    pages = 1
    while (link := next_link(r)) is not None:
        assert link.startswith(f"/v2/{tagged}/tags/list?")
        assert parse_qs(urlsplit(link).query)["n"] == [str(n)]
        r = client.get(link)
        assert r.status_code == 200
        page = r.json()["tags"]
        assert 0 < len(page) <= n
        seen += page
        pages += 1
        assert pages <= len(TAGS)
    assert seen == sorted(TAGS)  # everything, in order, no duplicates


def test_tags_n_larger_than_the_list(client: httpx.Client, tagged: str) -> None:
    r = client.get(f"/v2/{tagged}/tags/list", params={"n": 1000})
    assert r.json()["tags"] == sorted(TAGS)
    assert "Link" not in r.headers


def test_tags_exact_page(client: httpx.Client, tagged: str) -> None:
    r = client.get(f"/v2/{tagged}/tags/list", params={"n": len(TAGS)})
    assert r.json()["tags"] == sorted(TAGS)
    assert next_link(r) is None


def test_tags_n_zero(client: httpx.Client, tagged: str) -> None:
    r = client.get(f"/v2/{tagged}/tags/list", params={"n": 0})
    assert r.status_code == 200
    assert r.json() == {"name": tagged, "tags": []}


@pytest.mark.parametrize("last", ["a-b", "V3", "latest", "aaa", "zz", "zzz", "0"])
def test_tags_last(client: httpx.Client, tagged: str, last: str) -> None:
    r = client.get(f"/v2/{tagged}/tags/list", params={"last": last})
    assert r.status_code == 200
    assert r.json()["tags"] == [t for t in sorted(TAGS) if t > last]
    r = client.get(f"/v2/{tagged}/tags/list", params={"last": last, "n": 2})
    assert r.json()["tags"] == [t for t in sorted(TAGS) if t > last][:2]


@pytest.mark.parametrize(
    "n", ["-1", "abc", "1.5", "100001", "9" * 30, "9" * 5000, "\u00b2", "\u0661"]
)
def test_tags_bad_n(client: httpx.Client, tagged: str, n: str) -> None:
    r = client.get(f"/v2/{tagged}/tags/list", params={"n": n})
    assert_error(r, 400, "PAGINATION_NUMBER_INVALID")


def test_tags_of_a_repository_without_tags(client: httpx.Client, repo: str) -> None:
    push_image(client, repo)  # by digest only
    r = client.get(f"/v2/{repo}/tags/list")
    assert r.status_code == 200
    assert r.json() == {"name": repo, "tags": []}


def test_tags_of_an_unknown_repository(client: httpx.Client, repo: str) -> None:
    assert_error(client.get(f"/v2/{repo}/tags/list"), 404, "NAME_UNKNOWN")


def test_tags_method_not_allowed(client: httpx.Client, tagged: str) -> None:
    assert_error(client.post(f"/v2/{tagged}/tags/list"), 405, "UNSUPPORTED")
    assert_error(client.delete(f"/v2/{tagged}/tags/list"), 405, "UNSUPPORTED")


# -- catalog -----------------------------------------------------------------------------


def _whole_catalog(client: httpx.Client) -> list[str]:
    r = client.get("/v2/_catalog")
    assert r.status_code == 200
    assert "Link" not in r.headers
    names: list[str] = r.json()["repositories"]
    return names


def test_catalog_lists_repositories_sorted(client: httpx.Client) -> None:
    created = sorted(f"library/{unique('cat')}" for _ in range(3))
    for name in created:
        push_blob(client, name, b"catalogued")
    names = _whole_catalog(client)
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert set(created) <= set(names)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_catalog_pagination(client: httpx.Client, n: int) -> None:
    for _ in range(4):
        push_blob(client, f"library/{unique('page')}", b"paged")
    everything = _whole_catalog(client)
    r = client.get("/v2/_catalog", params={"n": n})
    assert r.status_code == 200
    seen = list(r.json()["repositories"])
    assert len(seen) == n
    while (link := next_link(r)) is not None:
        assert link.startswith("/v2/_catalog?")
        r = client.get(link)
        assert r.status_code == 200
        page = r.json()["repositories"]
        assert 0 < len(page) <= n
        seen += page
    assert seen == everything


def test_catalog_n_zero_and_last(client: httpx.Client) -> None:
    push_blob(client, f"library/{unique('last')}", b"x")
    everything = _whole_catalog(client)
    r = client.get("/v2/_catalog", params={"n": 0})
    assert r.status_code == 200
    assert r.json() == {"repositories": []}
    last = everything[len(everything) // 2]
    r = client.get("/v2/_catalog", params={"last": last})
    assert r.json()["repositories"] == [name for name in everything if name > last]


@pytest.mark.parametrize("n", ["-1", "x", "9" * 5000, "\u00b2"])
def test_catalog_bad_n(client: httpx.Client, n: str) -> None:
    assert_error(client.get("/v2/_catalog", params={"n": n}), 400, "PAGINATION_NUMBER_INVALID")


def _catalog_walk(client: httpx.Client, n: int | None = None) -> list[str]:
    r = client.get("/v2/_catalog", params={} if n is None else {"n": n})
    assert r.status_code == 200, r.text
    names: list[str] = list(r.json()["repositories"])
    while (link := next_link(r)) is not None:
        r = client.get(link)
        assert r.status_code == 200, r.text
        assert 0 < len(r.json()["repositories"]) <= (n or 0)
        names += r.json()["repositories"]
    return names


def test_catalog_as_a_ram_user_lists_exactly_what_it_may_pull(
    client: httpx.Client, registry: DockyardServer
) -> None:
    """Namespace-wide policies (decided once per namespace) beside patterns within a
    namespace (decided per repository), namespaces whose names start alike, a Deny that
    beats an Allow, a public repository and none at all; with and without pages."""
    base = unique("cat")
    open_, near, dotted, denied, mixed, closed = (
        base,
        f"{base}-x",
        f"{base}.y",
        f"{base}-deny",
        f"{base}-mix",
        f"{base}-none",
    )
    repos = {
        open_: ["a", "b", "c-1"],
        near: ["a"],
        dotted: ["a"],
        denied: ["a", "b"],
        mixed: ["app-1", "app-secret", "app-secret-2", "other"],
        closed: ["a", "pub"],
    }
    for namespace, names in repos.items():
        r = client.post("/api/v1/namespaces", json={"name": namespace})
        assert r.status_code == 201, r.text
        for name in names:
            push_blob(client, f"{namespace}/{name}", b"catalogued by a RAM user")
    r = client.patch(f"/api/v1/repositories/{closed}/pub", json={"repo_type": "public"})
    assert r.status_code == 200, r.text
    user, password = unique("lister"), "lister-registry-pw"
    arn = "acs:cr:*:*:repository"
    statements = [
        {"Effect": "Allow", "Action": "cr:ListRepository", "Resource": f"{arn}/*"},
        {
            "Effect": "Allow",
            "Action": ["cr:Get*", "cr:PullRepository"],
            "Resource": [f"{arn}/{open_}/*", f"{arn}/{denied}/*", f"{arn}/{mixed}/app-*"],
            "Condition": {"IpAddress": {"acs:SourceIp": ["127.0.0.0/8", "::1"]}},
        },
        {"Effect": "Allow", "Action": "cr:PullRepository", "Resource": f"{arn}/{dotted}/*"},
        {"Effect": "Deny", "Action": "cr:*", "Resource": f"{arn}/{denied}/*"},
        {"Effect": "Deny", "Action": "cr:Pull*", "Resource": f"{arn}/{mixed}/app-secret*"},
    ]
    policy = unique("catalog-policy")
    document = {"Version": "1", "Statement": statements}
    for method, path, body in [
        ("POST", "/api/v1/ram/users", {"name": user, "password": "lister-console-pw"}),
        ("PUT", f"/api/v1/ram/users/{user}/registry-password", {"password": password}),
        ("POST", "/api/v1/ram/policies", {"name": policy, "document": document}),
        ("PUT", f"/api/v1/ram/users/{user}/policies/{policy}", None),
    ]:
        r = client.request(method, path, json=body)
        assert r.status_code < 300, r.text
    expected = [
        f"{open_}/a",
        f"{open_}/b",
        f"{open_}/c-1",
        f"{closed}/pub",
        f"{dotted}/a",
        f"{mixed}/app-1",
    ]
    expected = sorted(expected)
    mine = set(repos)
    login = (f"{user}@admin", password)
    with connect(registry, auth=login) as ram:
        whole = [x for x in _catalog_walk(ram) if x.split("/")[0] in mine]
        assert whole == expected
        for n in (1, 2, 4):
            assert [x for x in _catalog_walk(ram, n) if x.split("/")[0] in mine] == expected
        r = ram.get("/auth/token", params={"service": "dockyard", "scope": "registry:catalog:*"})
        assert r.status_code == 200, r.text
        token = r.json()["token"]
    with connect(registry, auth=None, headers={"Authorization": f"Bearer {token}"}) as bearer:
        assert [x for x in _catalog_walk(bearer, 3) if x.split("/")[0] in mine] == expected


# -- referrers ---------------------------------------------------------------------------


def _artifact(
    client: httpx.Client, repo: str, subject: Pushed, artifact_type: str | None, note: str
) -> Pushed:
    push_blob(client, repo, EMPTY_JSON)
    payload = note.encode()
    push_blob(client, repo, payload)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_EMPTY, EMPTY_JSON),
        "layers": [descriptor("application/octet-stream", payload)],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
        "annotations": {"note": note},
    }
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    body = dumps(doc)
    return push_manifest(client, repo, digest_of(body), body, OCI_MANIFEST)


SBOM = "application/spdx+json"
SIG = "application/vnd.example.signature"


def test_referrers(client: httpx.Client, repo: str) -> None:
    subject = push_image(client, repo, "app")
    sbom = _artifact(client, repo, subject, SBOM, "sbom")
    sig = _artifact(client, repo, subject, SIG, "sig")
    untyped = _artifact(client, repo, subject, None, "untyped")
    child = push_image(client, repo)
    bundle_body = index_body(
        [child],
        artifactType="application/vnd.example.bundle",
        subject={"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": subject.size},
    )
    bundle = push_manifest(client, repo, digest_of(bundle_body), bundle_body, OCI_INDEX)
    _artifact(client, repo, sbom, SIG, "a signature of the sbom, not of the image")

    r = client.get(f"/v2/{repo}/referrers/{subject.digest}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == OCI_INDEX
    assert "OCI-Filters-Applied" not in r.headers
    body = r.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == OCI_INDEX
    by_digest = {d["digest"]: d for d in body["manifests"]}
    assert set(by_digest) == {sbom.digest, sig.digest, untyped.digest, bundle.digest}
    assert by_digest[sbom.digest] == {
        "mediaType": OCI_MANIFEST,
        "digest": sbom.digest,
        "size": sbom.size,
        "artifactType": SBOM,
        "annotations": {"note": "sbom"},
    }
    # Without artifactType, the config's media type is reported.
    assert by_digest[untyped.digest]["artifactType"] == OCI_EMPTY
    assert by_digest[bundle.digest]["mediaType"] == OCI_INDEX
    assert by_digest[bundle.digest]["artifactType"] == "application/vnd.example.bundle"

    filtered = client.get(f"/v2/{repo}/referrers/{subject.digest}", params={"artifactType": SIG})
    assert filtered.status_code == 200
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in filtered.json()["manifests"]] == [sig.digest]

    none = client.get(
        f"/v2/{repo}/referrers/{subject.digest}", params={"artifactType": "application/none"}
    )
    assert none.status_code == 200
    assert none.headers["OCI-Filters-Applied"] == "artifactType"
    assert none.json()["manifests"] == []

    # Referrers of the referrer.
    nested = client.get(f"/v2/{repo}/referrers/{sbom.digest}").json()["manifests"]
    assert [d["artifactType"] for d in nested] == [SIG]

    # Deleting a referrer removes it from the list.
    assert client.delete(f"/v2/{repo}/manifests/{sig.digest}").status_code == 202
    after = client.get(f"/v2/{repo}/referrers/{subject.digest}").json()["manifests"]
    assert sig.digest not in {d["digest"] for d in after}
    assert len(after) == 3


def test_referrers_of_a_subject_pushed_later(client: httpx.Client, repo: str) -> None:
    subject_body = b'{"schemaVersion":2,"mediaType":"' + OCI_INDEX.encode() + b'","manifests":[]}'
    subject = Pushed(digest_of(subject_body), subject_body, OCI_INDEX, len(subject_body))
    sbom = _artifact(client, repo, subject, SBOM, "early")
    r = client.get(f"/v2/{repo}/referrers/{subject.digest}")
    assert [d["digest"] for d in r.json()["manifests"]] == [sbom.digest]
    push_manifest(client, repo, "late", subject_body, OCI_INDEX)
    r = client.get(f"/v2/{repo}/referrers/{subject.digest}")
    assert [d["digest"] for d in r.json()["manifests"]] == [sbom.digest]


def test_referrers_of_an_unknown_digest(client: httpx.Client, repo: str) -> None:
    push_image(client, repo, "x")
    r = client.get(f"/v2/{repo}/referrers/{digest_of(b'nothing refers to this')}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == OCI_INDEX
    assert r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_referrers_are_per_repository(client: httpx.Client, repo: str) -> None:
    other = f"library/{unique()}"
    subject = push_image(client, repo, "x", seed="shared")
    assert push_image(client, other, "x", seed="shared").digest == subject.digest
    _artifact(client, repo, subject, SBOM, "only here")
    assert client.get(f"/v2/{other}/referrers/{subject.digest}").json()["manifests"] == []


@pytest.mark.parametrize("bad", ["sha256:abc", "latest", "md5:" + "0" * 32])
def test_referrers_of_a_malformed_digest(client: httpx.Client, repo: str, bad: str) -> None:
    push_image(client, repo, "x")
    assert_error(client.get(f"/v2/{repo}/referrers/{bad}"), 400, "DIGEST_INVALID")


EMPTY_REFERRERS = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


@pytest.mark.parametrize("namespace", ["library", "nowhere"])
def test_referrers_of_a_repository_with_nothing_pushed(
    client: httpx.Client, anon: httpx.Client, namespace: str
) -> None:
    """A registry that supports the referrers API must not answer 404 here: ORAS and
    notation would take it for "no referrers API" and fall back to the tag schema. Once
    authorization passes, a repository that does not exist yet (in a namespace that may
    not exist either) has no referrers."""
    path = f"/v2/{namespace}/{unique()}/referrers/{digest_of(b'x')}"
    r = client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == OCI_INDEX
    assert r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    assert client.head(path).status_code == 200
    # Authorization still comes first: without credentials it is not pullable.
    assert anon.get(path).status_code == 401


def test_referrers_method_not_allowed(client: httpx.Client, repo: str) -> None:
    push_image(client, repo, "x")
    r = client.delete(f"/v2/{repo}/referrers/{digest_of(b'x')}")
    assert_error(r, 405, "UNSUPPORTED")
