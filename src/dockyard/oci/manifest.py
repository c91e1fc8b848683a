"""Parse and validate manifests without any I/O.

The registry needs three things from a manifest: that it is well formed, which media type
it is stored under, and what it references (blobs, child manifests, a subject), so that
it can refuse manifests whose references are missing and keep the reference graph that
garbage collection and the referrers API walk.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest, DigestError

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_MEDIA_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
)
_NON_DISTRIBUTABLE = ("nondistributable", "vnd.docker.image.rootfs.foreign")


class ManifestError(ValueError):
    """The manifest is malformed; the message says how, for the client."""


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None
    urls: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        if self.platform:
            out["platform"] = self.platform
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    media_type: str
    blobs: tuple[Descriptor, ...] = ()
    """Config and layers that must exist in the repository (foreign layers excluded)."""
    children: tuple[Descriptor, ...] = ()
    """Manifests an index points to; they must exist in the repository."""
    subject: Descriptor | None = None
    artifact_type: str | None = None
    """What the referrers API reports: ``artifactType``, else the config media type."""
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestError(f"{where} must be a JSON object (a descriptor)")
    media_type = raw.get("mediaType")
    if not isinstance(media_type, str) or not _MEDIA_TYPE.fullmatch(media_type):
        raise ManifestError(f"{where}.mediaType must be a media type such as type/subtype")
    digest_text = raw.get("digest")
    if not isinstance(digest_text, str):
        raise ManifestError(f"{where}.digest is missing")
    try:
        digest = Digest.parse(digest_text)
    except DigestError as exc:
        raise ManifestError(f"{where}.digest: {exc}") from exc
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{where}.size must be a non-negative integer")
    artifact_type = raw.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestError(f"{where}.artifactType must be a string")
    annotations = _annotations(raw.get("annotations"), f"{where}.annotations")
    platform = raw.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise ManifestError(f"{where}.platform must be an object")
    urls = raw.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ManifestError(f"{where}.urls must be a list of strings")
    return Descriptor(media_type, digest, size, artifact_type, annotations, platform, tuple(urls))


def _annotations(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ManifestError(f"{where} must map strings to strings")
    return raw


def _is_foreign(desc: Descriptor) -> bool:
    return bool(desc.urls) and any(part in desc.media_type for part in _NON_DISTRIBUTABLE)


def parse_manifest(body: bytes, content_type: str | None) -> Manifest:
    """Validate ``body`` as a manifest sent with ``content_type``; return its references."""
    if len(body) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest is {len(body)} bytes; the limit is {MAX_MANIFEST_BYTES}")
    content_type = (content_type or "").split(";")[0].strip().lower() or None
    if content_type in mt.SCHEMA1:
        raise ManifestError(
            "Docker schema 1 manifests are not supported; push with a current client "
            "(schema 2 or OCI)"
        )
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ManifestError("manifest JSON is nested too deeply") from exc
    if not isinstance(doc, dict):
        raise ManifestError("manifest must be a JSON object")
    schema = doc.get("schemaVersion")
    if schema == 1:
        raise ManifestError(
            "Docker schema 1 manifests are not supported; push with a current client "
            "(schema 2 or OCI)"
        )
    if type(schema) is not int or schema != 2:
        raise ManifestError("schemaVersion must be the integer 2")
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestError("mediaType must be a string")
    media_type = _choose_media_type(doc, declared, content_type)
    if media_type in mt.INDEXES:
        return _parse_index(doc, media_type)
    return _parse_image(doc, media_type)


def _choose_media_type(doc: dict[str, Any], declared: str | None, content_type: str | None) -> str:
    if declared and content_type and declared != content_type:
        raise ManifestError(
            f"manifest mediaType {declared!r} does not match Content-Type {content_type!r}"
        )
    media_type = declared or content_type
    if media_type is None or media_type in ("application/json", "application/octet-stream"):
        # An OCI manifest may omit mediaType; its shape then tells what it is.
        media_type = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    if media_type not in mt.MANIFESTS:
        raise ManifestError(
            f"media type {media_type!r} is not a manifest type this registry accepts "
            f"({', '.join(sorted(mt.MANIFESTS))})"
        )
    if media_type in (mt.DOCKER_MANIFEST, mt.DOCKER_LIST) and declared != media_type:
        raise ManifestError(f"a Docker manifest must declare mediaType {media_type!r}")
    return media_type


def _parse_image(doc: dict[str, Any], media_type: str) -> Manifest:
    if "manifests" in doc:
        raise ManifestError("an image manifest must not have a 'manifests' list")
    config = _descriptor(doc.get("config"), "config")
    raw_layers = doc.get("layers", [])
    if not isinstance(raw_layers, list):
        raise ManifestError("layers must be a list")
    layers = [_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(raw_layers)]
    if media_type == mt.DOCKER_MANIFEST and not layers:
        raise ManifestError("a Docker image manifest needs at least one layer")
    subject = _subject(doc)
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and (
        not isinstance(artifact_type, str) or not _MEDIA_TYPE.fullmatch(artifact_type)
    ):
        raise ManifestError("artifactType must be a media type")
    blobs = tuple(d for d in [config, *layers] if not _is_foreign(d))
    return Manifest(
        media_type=media_type,
        blobs=blobs,
        subject=subject,
        artifact_type=artifact_type or config.media_type,
        annotations=_annotations(doc.get("annotations"), "annotations"),
    )


def _parse_index(doc: dict[str, Any], media_type: str) -> Manifest:
    if "config" in doc or "layers" in doc:
        raise ManifestError("an index must not have 'config' or 'layers'")
    raw = doc.get("manifests")
    if not isinstance(raw, list):
        raise ManifestError("manifests must be a list")
    children = tuple(_descriptor(m, f"manifests[{i}]") for i, m in enumerate(raw))
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestError("artifactType must be a string")
    return Manifest(
        media_type=media_type,
        children=children,
        subject=_subject(doc),
        artifact_type=artifact_type,
        annotations=_annotations(doc.get("annotations"), "annotations"),
    )


def _subject(doc: dict[str, Any]) -> Descriptor | None:
    raw = doc.get("subject")
    return None if raw is None else _descriptor(raw, "subject")
