"""What an image is, in the console (a real browser against a real server): a tag's page
for an image pushed with skopeo, a two-platform index, artifacts with referrers, and the
tag table's search and sort over a thousand tags.

The browser fixtures and helpers are ``test_console``'s; this module's server has an
account of its own (``artifacts``) whose root pushes with a registry password.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console import test_console
from tests.console.axe import assert_accessible
from tests.console.test_console import sign_in
from tests.e2e.images import Image, Layout, canonical, make_layer
from tests.fixtures.oci import (
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    push_blob,
    push_manifest,
    put_manifest,
    sha256,
)
from tests.fixtures.server import DockyardServer, running_server

pytestmark = pytest.mark.clients

playwright = test_console.playwright
browser = test_console.browser
context = test_console.context
page = test_console.page
skopeo = test_console.skopeo

OWNER, PASSWORD, REGISTRY_PASSWORD = "artifacts", "artifacts-console-pw", "artifacts-registry-pw"
CREDS = f"{OWNER}:{REGISTRY_PASSWORD}"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
COSIGN_SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
SPDX = "application/spdx+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    base = tmp_path_factory.mktemp("console-artifacts")
    with running_server(base, remove=True, namespace=None) as found:
        with found.client() as admin:
            account = {"name": OWNER, "password": PASSWORD, "namespace_quota": 10}
            r = admin.post("/api/v1/accounts", json=account)
            assert r.status_code == 201, r.text
        with found.client(auth=(OWNER, PASSWORD)) as owner:
            r = owner.put("/api/v1/me/registry-password", json={"password": REGISTRY_PASSWORD})
            assert r.is_success, r.text
            assert owner.post("/api/v1/namespaces", json={"name": "arts"}).status_code == 201
        yield found


@pytest.fixture
def owner(server: DockyardServer) -> Iterator[httpx.Client]:
    with server.client(auth=(OWNER, PASSWORD)) as client:
        yield client


def rich_image(arch: str = "amd64") -> Image:
    """An image whose config has every field the page shows, and a history with steps
    that made no layer (ENV, CMD) between those that did."""
    layers = [
        make_layer({f"usr/share/{arch}/base.txt": os.urandom(3000)}),
        make_layer({"usr/bin/app": b"#!/bin/sh\necho app\n" + os.urandom(1500)}),
    ]
    config: dict[str, Any] = {
        "created": "2026-11-30T10:00:00Z",
        "author": "Console tests",
        "architecture": arch,
        "os": "linux",
        "config": {
            "Entrypoint": ["/usr/bin/app"],
            "Cmd": ["--serve"],
            "Env": ["PATH=/usr/bin:/bin", "APP_MODE=console-test"],
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {"org.opencontainers.image.title": "console-app"},
            "WorkingDir": "/srv",
            "User": "1000:1000",
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [
            {"created": "2026-11-30T09:00:00Z", "created_by": "ADD base.tar /"},
            {"created_by": "ENV APP_MODE=console-test", "empty_layer": True},
            {"created_by": "COPY app /usr/bin/app"},
            {"created_by": 'CMD ["--serve"]', "empty_layer": True},
        ],
    }
    if arch == "arm64":
        config["variant"] = "v8"
    body = canonical(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, body),
        "layers": [descriptor(OCI_LAYER, layer.blob) for layer in layers],
    }
    return Image(canonical(manifest), OCI_MANIFEST, body, layers, arch)


def pull_size(image: Image) -> int:
    return len(image.manifest) + sum(len(b) for b in image.blobs.values())


def test_the_tag_page_of_an_image_pushed_with_skopeo(
    page: Page, skopeo: test_console.Skopeo, server: DockyardServer, tmp_path: Path
) -> None:
    image = rich_image()
    layout = Layout.create(tmp_path / "layout")
    layout.add_image(image, "1.0")
    _, digest = skopeo.push(f"oci:{layout.root}:1.0", f"docker://{server.host}/arts/app:1.0", CREDS)
    assert digest == image.digest

    sign_in(page, OWNER, PASSWORD)
    page.goto("/console/repositories/arts/app")
    page.get_by_test_id("tag-link").filter(has_text="1.0").click()
    assert page.url.endswith("/console/repositories/arts/app/tags/1.0")
    expect(page.get_by_test_id("tag-title")).to_contain_text("arts/app:1.0")
    expect(page.get_by_test_id("kind")).to_have_text("Container image")
    expect(page.get_by_test_id("digest")).to_have_text(image.digest)
    expect(page.get_by_test_id("media-type")).to_have_text(OCI_MANIFEST)
    expect(page.get_by_test_id("total-size")).to_have_text(test_console.human(pull_size(image)))

    config = page.get_by_test_id("config")
    expect(config).to_contain_text("linux/amd64")
    expect(config).to_contain_text("2026-11-30 10:00:00 UTC")
    expect(config).to_contain_text("Console tests")
    expect(page.get_by_test_id("entrypoint")).to_have_text('["/usr/bin/app"]')
    expect(page.get_by_test_id("cmd")).to_have_text('["--serve"]')
    expect(page.get_by_test_id("ports")).to_have_text("8080/tcp")
    expect(config).to_contain_text("/srv")
    expect(config).to_contain_text("1000:1000")
    expect(page.get_by_test_id("env")).to_contain_text("APP_MODE=console-test")
    expect(page.get_by_test_id("labels")).to_contain_text("console-app")

    # Each step beside its layer (digest and compressed size); ENV and CMD made none.
    rows = page.get_by_test_id("history").locator("tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("ADD base.tar /")
    expect(rows.nth(0)).to_contain_text(image.layers[0].digest[:19])
    expect(rows.nth(0)).to_contain_text(test_console.human(len(image.layers[0].blob)))
    expect(rows.nth(1)).to_contain_text("ENV APP_MODE=console-test")
    expect(rows.nth(1).get_by_test_id("empty-layer")).to_have_text("Empty layer")
    expect(rows.nth(2)).to_contain_text("COPY app /usr/bin/app")
    expect(rows.nth(2)).to_contain_text(image.layers[1].digest[:19])
    expect(rows.nth(3).get_by_test_id("empty-layer")).to_be_visible()
    expect(page.get_by_test_id("no-referrers")).to_be_visible()
    assert_accessible(page)

    # The manifest pretty-printed, and the raw bytes to download.
    shown = page.get_by_test_id("manifest-json").inner_text()
    assert json.loads(shown) == json.loads(image.manifest)
    with page.expect_download() as info:
        page.get_by_test_id("raw-download").click()
    download = info.value
    assert download.suggested_filename == image.digest.replace(":", "-") + ".json"
    assert Path(download.path()).read_bytes() == image.manifest


def test_a_two_platform_index_lists_its_platforms(
    page: Page, skopeo: test_console.Skopeo, server: DockyardServer, tmp_path: Path
) -> None:
    images = [rich_image("amd64"), rich_image("arm64")]
    layout = Layout.create(tmp_path / "layout")
    index = layout.add_index(images, "multi")
    code, out = skopeo.run(
        "copy",
        "--all",
        "--dest-creds",
        CREDS,
        "--dest-tls-verify=false",
        f"oci:{layout.root}:multi",
        f"docker://{server.host}/arts/multi:multi",
    )
    assert code == 0, out

    sign_in(page, OWNER, PASSWORD)
    page.goto("/console/repositories/arts/multi/tags/multi")
    expect(page.get_by_test_id("kind")).to_have_text("Multi-platform image")
    expect(page.get_by_test_id("digest")).to_have_text(sha256(index))
    table = page.get_by_test_id("platforms")
    amd64 = table.locator('[data-platform="linux/amd64"]')
    arm64 = table.locator('[data-platform="linux/arm64/v8"]')
    expect(amd64.get_by_test_id("platform-size")).to_have_text(
        test_console.human(pull_size(images[0]))
    )
    expect(arm64).to_contain_text("v8")
    expect(arm64.get_by_test_id("platform-size")).to_have_text(
        test_console.human(pull_size(images[1]))
    )
    expect(page.get_by_test_id("total-size")).to_have_text(
        test_console.human(len(index) + sum(map(pull_size, images)))
    )
    assert_accessible(page)
    # Each platform's own page: its config says its architecture.
    arm64.locator("a").click()
    assert unquote(page.url).endswith(f"/arts/multi/manifests/{images[1].digest}")
    expect(page.get_by_test_id("kind")).to_have_text("Container image")
    expect(page.get_by_test_id("config")).to_contain_text("linux/arm64/v8")


def test_artifacts_and_referrers_are_shown_as_what_they_are(
    page: Page, server: DockyardServer
) -> None:
    with server.client(auth=(OWNER, REGISTRY_PASSWORD)) as registry:
        image = rich_image()
        for data in image.blobs.values():
            push_blob(registry, "arts/signed", data)
        r = put_manifest(registry, "arts/signed", "v1", json.loads(image.manifest), OCI_MANIFEST)
        assert r.status_code == 201, r.text
        subject = {"mediaType": OCI_MANIFEST, "digest": sha256(r.request.content), "size": 0}
        subject["size"] = len(r.request.content)
        empty = (OCI_EMPTY, b"{}")
        signature, _ = push_manifest(
            registry,
            "arts/signed",
            "sig",
            empty,
            [(COSIGN_SIG, os.urandom(80))],
            artifactType=COSIGN_SIG,
            subject=subject,
            annotations={"dev.sigstore.cosign/signer": "console-tests"},
        )
        sbom, _ = push_manifest(
            registry,
            "arts/signed",
            "sbom",
            empty,
            [(SPDX, b'{"spdxVersion": "SPDX-2.3"}')],
            artifactType=SPDX,
            subject=subject,
        )
        chart = json.dumps({"name": "tools", "version": "1.2.3"}).encode()
        push_manifest(
            registry, "arts/charts", "1.2.3", (HELM_CONFIG, chart), [(HELM_LAYER, os.urandom(99))]
        )

    sign_in(page, OWNER, PASSWORD)
    page.goto("/console/repositories/arts/signed/tags/v1")
    referrers = page.get_by_test_id("referrers")
    sig_row = referrers.locator(f'[data-referrer="{signature}"]')
    expect(sig_row).to_contain_text("Signature")
    expect(sig_row).to_contain_text(COSIGN_SIG)
    expect(sig_row).to_contain_text("dev.sigstore.cosign/signer")
    expect(sig_row).to_contain_text("console-tests")
    expect(referrers.locator(f'[data-referrer="{sbom}"]')).to_contain_text("SBOM")

    # The signature's own page: a signature, not a broken image; it links back.
    sig_row.locator("a").click()
    expect(page.get_by_test_id("kind")).to_contain_text("Signature")
    expect(page.get_by_test_id("history")).to_have_count(0)
    expect(page.get_by_test_id("layers")).to_contain_text(COSIGN_SIG)
    expect(page.get_by_test_id("config-media-type")).to_have_text(OCI_EMPTY)
    page.get_by_test_id("subject").locator("a").click()
    expect(page.get_by_test_id("kind")).to_have_text("Container image")

    page.goto("/console/repositories/arts/charts/tags/1.2.3")
    expect(page.get_by_test_id("kind")).to_have_text("Helm chart")
    expect(page.get_by_test_id("artifact")).to_contain_text("Not a container image")
    expect(page.get_by_test_id("config-media-type")).to_have_text(HELM_CONFIG)
    content = json.loads(page.get_by_test_id("config-content").inner_text())
    assert content == {"name": "tools", "version": "1.2.3"}
    expect(page.get_by_test_id("layers")).to_contain_text(HELM_LAYER)
    assert_accessible(page)

    # A tag that is not there: the console's error page, with the API's words.
    page.goto("/console/repositories/arts/charts/tags/nope")
    expect(page.locator("h1")).to_have_text("Not found")
    expect(page.locator("main")).to_contain_text("tag 'nope' does not exist")


TAG_COUNT = 1000


def test_a_thousand_tags_are_searched_and_sorted_on_the_server(
    page: Page, server: DockyardServer
) -> None:
    """Three images of different sizes under a thousand tags (100 tags per push by
    digest); the table searches, sorts and pages them in the database."""
    names = [f"t{i:04d}" for i in range(TAG_COUNT)]
    sizes: dict[str, int] = {}
    with server.client(auth=(OWNER, REGISTRY_PASSWORD)) as registry:
        images = []
        for size in (1000, 50_000, 9000):
            config = json.dumps({"architecture": "amd64", "os": "linux", "n": size}).encode()
            layer = os.urandom(size)
            push_blob(registry, "arts/many", config)
            push_blob(registry, "arts/many", layer)
            manifest = {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config),
                "layers": [descriptor(OCI_LAYER, layer)],
            }
            body = json.dumps(manifest).encode()
            images.append((body, len(body) + len(config) + len(layer)))
        for start in range(0, TAG_COUNT, 100):
            batch = names[start : start + 100]
            body, total = images[(start // 100) % 3]
            r = registry.put(
                f"/v2/arts/many/manifests/{sha256(body)}",
                params=[("tag", n) for n in batch],
                content=body,
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert r.status_code == 201, r.text
            sizes.update(dict.fromkeys(batch, total))
    largest = max(sizes.values())

    sign_in(page, OWNER, PASSWORD)
    started = time.monotonic()
    page.goto("/console/repositories/arts/many")
    links = page.get_by_test_id("tag-link")
    expect(links).to_have_count(50)
    first_page = time.monotonic() - started

    # By name, A to Z, then Z to A (the same header again).
    page.get_by_test_id("sort-name").click()
    expect(links.first).to_have_text("t0000")
    expect(links.nth(49)).to_have_text("t0049")
    expect(page.locator('th[aria-sort="ascending"]')).to_contain_text("Tag")
    page.get_by_test_id("next-page").click()
    expect(links.first).to_have_text("t0050")
    page.get_by_test_id("sort-name").click()
    expect(links.first).to_have_text("t0999")

    # The largest first, ties by name; the size shown is the tag's.
    started = time.monotonic()
    page.get_by_test_id("sort-size").click()
    expect(page.locator('th[aria-sort="descending"]')).to_contain_text("Size")
    by_size = time.monotonic() - started
    expect(page.locator('th[aria-sort="descending"]')).to_contain_text("Size")
    biggest = sorted(n for n, s in sizes.items() if s == largest)
    expect(links.first).to_have_text(biggest[0])
    expect(page.get_by_test_id("tag-size").first).to_have_text(test_console.human(largest))
    page.get_by_test_id("sort-size").click()
    smallest = sorted(n for n, s in sizes.items() if s == min(sizes.values()))
    expect(links.first).to_have_text(smallest[0])

    # Search keeps the order; a search matching nothing says so.
    page.fill("#f-tag-q", "t09")
    page.get_by_test_id("tag-search").get_by_role("button", name="Search").click()
    expected = sorted((sizes[n], n) for n in names if "t09" in n)
    expect(links).to_have_count(50)
    expect(links.first).to_have_text(expected[0][1])
    assert "order=size" in page.url
    page.fill("#f-tag-q", "nothing-like-this")
    page.get_by_test_id("tag-search").get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("no-tag-match")).to_contain_text("nothing-like-this")
    # An order the table does not know is the default, not an error.
    page.goto("/console/repositories/arts/many?tab=tags&order=bogus&direction=sideways")
    expect(links).to_have_count(50)
    print(
        f"\n1,000 tags: the tag table's first page in {first_page:.2f} s, by size {by_size:.2f} s"
    )


def test_a_read_only_ram_user_sees_the_tag_page(
    page: Page, server: DockyardServer, owner: httpx.Client
) -> None:
    """A read-only permission (pull) shows the image as the owner sees it."""
    with server.client(auth=(OWNER, REGISTRY_PASSWORD)) as registry:
        push_manifest(
            registry, "arts/shared", "2.0", (OCI_CONFIG, rich_image().config), [(OCI_LAYER, b"x")]
        )
    r = owner.post("/api/v1/ram/users", json={"name": "reader", "password": "reader-console-pw"})
    assert r.status_code == 201, r.text
    r = owner.put("/api/v1/repositories/arts/shared/permissions/reader", json={"role": "read-only"})
    assert r.status_code == 200, r.text

    sign_in(page, f"reader@{OWNER}", "reader-console-pw")
    page.goto("/console/repositories/arts/shared/tags/2.0")
    expect(page.get_by_test_id("kind")).to_have_text("Container image")
    expect(page.get_by_test_id("entrypoint")).to_have_text('["/usr/bin/app"]')
    # Another repository of the account: not the reader's to see.
    page.goto("/console/repositories/arts/signed/tags/v1")
    expect(page.locator("h1")).to_have_text("Not allowed")
