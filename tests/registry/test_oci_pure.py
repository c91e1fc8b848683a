"""Property tests of the pure OCI parsers: digests, repository names, tags, manifests."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest, DigestError
from dockyard.oci.manifest import Manifest, ManifestError, parse_manifest
from dockyard.oci.reference import NameError_, RepositoryName, check_tag

# -- digests -----------------------------------------------------------------------------

VALID_DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")

HEX = "0123456789abcdef"
NEAR_HEX = "0123456789abcdefABCDEFgxz-_=:./\n "


@st.composite
def digest_like(draw: st.DrawFn) -> str:
    algorithm = draw(
        st.sampled_from(["sha256", "sha512", "SHA256", "md5", "sha384", "sha256+b64", "", "sha"])
    )
    length = draw(
        st.one_of(st.sampled_from([0, 1, 32, 63, 64, 65, 127, 128, 129]), st.integers(0, 300))
    )
    alphabet = HEX if draw(st.booleans()) else NEAR_HEX
    encoded = draw(st.text(alphabet, min_size=length, max_size=length))
    separator = draw(st.sampled_from([":", ":", ":", "", "::", "/"]))
    suffix = draw(st.sampled_from(["", "", "", "\n", " ", "\x00"]))
    return f"{algorithm}{separator}{encoded}{suffix}"


@settings(max_examples=200)
@given(st.one_of(digest_like(), st.text(max_size=300)))
@example("sha256:" + "a" * 63 + "\n")
@example("sha512:" + "a" * 127 + "\n")
@example("sha256:" + "a" * 64 + "\n")
def test_digest_parse_accepts_exactly_valid_digests(text: str) -> None:
    valid = VALID_DIGEST.fullmatch(text) is not None
    try:
        digest = Digest.parse(text)
    except DigestError:
        assert not valid, text
    else:
        assert valid, text
        assert str(digest) == text
        assert digest.algorithm == text.split(":", maxsplit=1)[0]


@given(st.binary(max_size=200), st.sampled_from(["sha256", "sha512"]))
def test_digest_of_round_trips(data: bytes, algorithm: str) -> None:
    digest = Digest.of(data, algorithm)
    assert Digest.parse(str(digest)) == digest
    assert digest.hex == hashlib.new(algorithm, data).hexdigest()


# -- repository names and tags -----------------------------------------------------------

COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
VALID_NAME = re.compile(rf"{COMPONENT}/{COMPONENT}")
VALID_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")

name_chars = st.sampled_from("abz019._-/A%\n :")


@settings(max_examples=200)
@given(
    st.one_of(
        st.text(name_chars, max_size=40),
        st.from_regex(VALID_NAME, fullmatch=True),
        st.text(max_size=40),
        st.builds(
            lambda a, b, c: f"{a}{b}{c}",
            st.from_regex(VALID_NAME, fullmatch=True),
            st.sampled_from(["", "\n", "/", "-", "A", "/x"]),
            st.just(""),
        ),
    )
)
@example("library/abc\n")
@example("library/" + "a" * 247)
@example("library/" + "a" * 248)
def test_repository_name_parse_matches_the_grammar(text: str) -> None:
    valid = VALID_NAME.fullmatch(text) is not None and len(text) <= 255
    try:
        name = RepositoryName.parse(text)
    except NameError_:
        assert not valid, text
    else:
        assert valid, text
        assert str(name) == text


@settings(max_examples=300)
@given(
    st.one_of(
        st.from_regex(VALID_TAG, fullmatch=True),
        st.text(st.sampled_from("aZ9_.-:/\n @"), max_size=140),
        st.text(max_size=20),
    )
)
@example("latest\n")
@example("a" * 128)
@example("a" * 129)
def test_check_tag_matches_the_grammar(text: str) -> None:
    valid = VALID_TAG.fullmatch(text) is not None
    try:
        check_tag(text)
    except NameError_:
        assert not valid, repr(text)
    else:
        assert valid, repr(text)


# -- manifests ---------------------------------------------------------------------------

content_types = st.one_of(
    st.none(),
    st.sampled_from([*sorted(mt.MANIFESTS | mt.SCHEMA1), "application/json", ""]),
    st.text(max_size=40),
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=8,
)

KEYS = [
    "schemaVersion",
    "mediaType",
    "config",
    "layers",
    "manifests",
    "subject",
    "artifactType",
    "annotations",
    "digest",
    "size",
    "urls",
    "platform",
]

descriptor_like = st.fixed_dictionaries(
    {},
    optional={
        "mediaType": st.one_of(st.sampled_from([mt.OCI_CONFIG, mt.OCI_MANIFEST]), json_values),
        "digest": st.one_of(st.just("sha256:" + "a" * 64), st.text(max_size=80), json_values),
        "size": st.one_of(st.integers(-5, 2**64), json_values),
        "urls": json_values,
        "annotations": json_values,
        "artifactType": json_values,
        "platform": json_values,
    },
)

manifest_like = st.fixed_dictionaries(
    {},
    optional={
        "schemaVersion": st.one_of(st.sampled_from([1, 2, 2.0, "2", True]), json_values),
        "mediaType": st.one_of(st.sampled_from(sorted(mt.MANIFESTS)), json_values),
        "config": st.one_of(descriptor_like, json_values),
        "layers": st.one_of(st.lists(st.one_of(descriptor_like, json_values), max_size=3)),
        "manifests": st.one_of(st.lists(st.one_of(descriptor_like, json_values), max_size=3)),
        "subject": st.one_of(descriptor_like, json_values),
        "artifactType": st.one_of(st.just("application/vnd.example+json"), json_values),
        "annotations": st.one_of(st.dictionaries(st.text(max_size=5), st.text(max_size=5))),
    },
)


def _check(body: bytes, content_type: str | None) -> None:
    try:
        manifest = parse_manifest(body, content_type)
    except ManifestError:
        return
    assert isinstance(manifest, Manifest)
    assert manifest.media_type in mt.MANIFESTS
    for desc in (*manifest.blobs, *manifest.children):
        assert VALID_DIGEST.fullmatch(str(desc.digest))
        assert desc.size >= 0


@settings(max_examples=300)
@given(st.binary(max_size=300), content_types)
@example(b"[" * 100_000, None)
@example(b'{"a":' * 50_000, mt.OCI_MANIFEST)
@example(b"\xef\xbb\xbf{}", None)
@example(b'{"schemaVersion": 2.0, "config": {}}', None)
def test_parse_manifest_on_arbitrary_bytes(body: bytes, content_type: str | None) -> None:
    _check(body, content_type)


@settings(max_examples=300)
@given(json_values, content_types)
def test_parse_manifest_on_arbitrary_json(doc: Any, content_type: str | None) -> None:
    _check(json.dumps(doc).encode(), content_type)


@settings(max_examples=150)
@given(manifest_like, content_types)
def test_parse_manifest_on_manifest_shaped_json(doc: dict[str, Any], ct: str | None) -> None:
    _check(json.dumps(doc).encode(), ct)


@given(
    st.lists(st.binary(max_size=20), max_size=4),
    st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=3),
)
def test_valid_image_manifest_lists_its_blobs(
    layers: list[bytes], annotations: dict[str, str]
) -> None:
    def desc(media_type: str, data: bytes) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": str(Digest.of(data)), "size": len(data)}

    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": desc(mt.OCI_CONFIG, b"{}"),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar", layer) for layer in layers],
        "annotations": annotations,
    }
    manifest = parse_manifest(json.dumps(doc).encode(), mt.OCI_MANIFEST)
    assert [str(d.digest) for d in manifest.blobs] == [
        str(Digest.of(b"{}")),
        *(str(Digest.of(layer)) for layer in layers),
    ]
    assert manifest.artifact_type == mt.OCI_CONFIG
    assert manifest.annotations == annotations
    assert not manifest.is_index
