"""A manifest explained: what the console's tag page and ``GET …/manifests/{reference}``
show about an image or artifact.

Everything comes from what the registry already keeps: the manifest (stored whole), its
config blob (read from the blob store when it is an image config small enough to be
one), the manifests an index lists, and the referrers that name it as their subject.
The registry's own reads are used, so the page shows exactly what a pull would get.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from dockyard.catalog.service import RepoRef
from dockyard.db import tables as t
from dockyard.errors import Invalid, NotFound
from dockyard.oci import describe
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest, DigestError
from dockyard.oci.reference import NameError_, check_tag
from dockyard.registry.errors import RegistryError
from dockyard.registry.service import RegistryService, StoredManifest

CONFIG_MAX_BYTES = 1024 * 1024
"""Largest config blob read and shown (an image config is a few KiB; past this it is
shown as its descriptor only)."""


class ManifestDetails:
    def __init__(self, registry: RegistryService) -> None:
        self.registry = registry

    def explain(self, ref: RepoRef, reference: str) -> dict[str, Any]:
        """The manifest that ``reference`` (a tag or a digest) names in ``ref``: its raw
        text, its kind, and per kind its platforms, config, history and layers, plus the
        referrers whose subject it is. Raises :class:`NotFound` (no such repository or
        manifest) or :class:`Invalid` (a malformed reference)."""
        stored = self._manifest(ref, reference)
        doc = json.loads(stored.content)
        kind = describe.classify(doc, stored.media_type)
        out: dict[str, Any] = {
            "digest": stored.digest,
            "media_type": stored.media_type,
            "size": len(stored.content),
            "kind": kind.name,
            "kind_label": kind.label,
            "artifact_type": describe.text_of(doc.get("artifactType")),
            "annotations": describe.string_map(doc.get("annotations")),
            "subject": describe.descriptor(describe.object_at(doc, "subject"))
            if "subject" in doc
            else None,
            "raw": stored.content.decode("utf-8", errors="replace"),
        }
        if stored.media_type in mt.INDEXES:
            out["platforms"] = self._platforms(ref, doc)
            # What a pull of every platform fetches, as a tag's size counts it.
            parts = [p["total_size"] or 0 for p in out["platforms"]]
        else:
            out.update(self._image(doc, kind))
            parts = [d["size"] or 0 for d in [out["config"], *out["layers"]]]
        out["total_size"] = len(stored.content) + sum(parts)
        out["referrers"] = [_referrer(r) for r in self.registry.referrers(ref, stored.digest, None)]
        return out

    def _manifest(self, ref: RepoRef, reference: str) -> StoredManifest:
        """The manifest a well-formed tag or digest names (a malformed one is refused
        with what is wrong, where a pull would only say "unknown")."""
        what = "manifest" if ":" in reference else "tag"
        try:
            if what == "manifest":
                Digest.parse(reference)
            else:
                check_tag(reference)
        except (DigestError, NameError_) as exc:
            raise Invalid(f"{what} {reference[:200]!r}: {exc}") from exc
        if not ref.exists:
            raise NotFound(f"repository {ref.name} does not exist")
        try:
            return self.registry.get_manifest(ref, reference)
        except RegistryError as exc:
            raise NotFound(f"{what} {reference[:200]!r} does not exist in {ref.name}") from exc

    def _platforms(self, ref: RepoRef, doc: dict[str, Any]) -> list[dict[str, Any]]:
        """Each entry of an index, with the size of what a pull of it fetches (its
        manifest, config and layers) when the registry holds it."""
        entries = describe.platforms(doc)
        digests = [e["digest"] for e in entries if e["digest"]]
        with self.registry.db.read() as conn:
            rows = conn.execute(
                sa.select(t.manifests.c.digest, t.manifests.c.content).where(
                    t.manifests.c.repository_id == ref.repository_id,
                    t.manifests.c.digest.in_(digests),
                )
            ).all()
        contents = {row.digest: bytes(row.content) for row in rows}
        for entry in entries:
            content = contents.get(entry["digest"])
            entry["present"] = content is not None
            entry["total_size"] = None if content is None else _pull_size(content)
            entry["kind"] = None
            if content is not None and entry["role"] == "image":
                child = json.loads(content)
                entry["kind"] = describe.classify(child, _media_type(child, entry)).name
        return entries

    def _image(self, doc: dict[str, Any], kind: describe.Kind) -> dict[str, Any]:
        """An image manifest's config and layers, and for an image its history."""
        config = describe.descriptor(describe.object_at(doc, "config"))
        layers = [describe.descriptor(d) for d in describe.objects_of(doc.get("layers"))]
        out: dict[str, Any] = {
            "config": config,
            "layers": layers,
            "image": None,
            "history": None,
            "config_content": None,
        }
        document = self._config_document(config)
        if document is None:
            return out
        if kind == describe.IMAGE:
            out["image"] = describe.image_config(document)
            out["history"] = describe.history(document, layers)
        elif document:
            # An artifact's config says what the artifact is (a Helm chart's name and
            # version); it is shown as it is.
            out["config_content"] = document
        return out

    def _config_document(self, config: dict[str, Any]) -> dict[str, Any] | None:
        """The config blob as a JSON object, when it is one of a sensible size."""
        size, digest = config["size"], config["digest"]
        if not digest or size is None or size > CONFIG_MAX_BYTES or size == 0:
            return None
        if not config["media_type"].endswith("json"):
            return None
        try:
            data = b"".join(self.registry.store.read(digest, 0, size))
            found = json.loads(data)
        except (LookupError, ValueError, RecursionError):
            return None
        return found if isinstance(found, dict) else None


def _media_type(doc: dict[str, Any], entry: dict[str, Any]) -> str:
    declared = doc.get("mediaType")
    return declared if isinstance(declared, str) else str(entry["media_type"])


def _pull_size(content: bytes) -> int:
    """The manifest plus the config and layers it lists."""
    doc = json.loads(content)
    blobs = [describe.object_at(doc, "config"), *describe.objects_of(doc.get("layers"))]
    return len(content) + sum(describe.descriptor(b)["size"] or 0 for b in blobs)


def _referrer(found: dict[str, Any]) -> dict[str, Any]:
    """A referrer (the referrers API's descriptor) with the kind its type names."""
    entry = describe.descriptor(found)
    artifact_type = entry.get("artifact_type")
    kind = describe.kind_of_type(artifact_type)
    entry["kind"] = (kind or describe.ARTIFACT).name
    entry["kind_label"] = (kind or describe.ARTIFACT).label
    return entry
