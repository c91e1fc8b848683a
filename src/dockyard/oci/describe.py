"""What a manifest is, told for people: its kind, its image config, its history.

A registry holds more than images: Helm charts, WASM modules, signatures, SBOMs and
attestations all travel as OCI manifests. Shown as an image, such an artifact looks
broken (no platform, no history, a "config" that is not an image config), so this module
names each kind by the media types its producers use, and keeps the image reading
(config fields, history steps beside their layers) for what really is an image.

Pure functions over parsed JSON: no I/O, nothing trusted (every field is checked for its
type, since any client can push any JSON).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.oci import mediatypes as mt

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
WASM_CONFIGS = frozenset(
    {"application/vnd.wasm.config.v0+json", "application/vnd.wasm.config.v1+json"}
)
WASM_LAYERS = frozenset(
    {
        "application/vnd.wasm.content.layer.v1+wasm",
        "application/vnd.module.wasm.content.layer.v1+wasm",
    }
)
COSIGN_SIGNATURE_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_TYPES = frozenset(
    {
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "application/vnd.cncf.notary.signature",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
    }
)
SBOM_TYPES = frozenset(
    {
        "application/spdx+json",
        "text/spdx",
        "application/vnd.cyclonedx+json",
        "application/vnd.cyclonedx+xml",
        "application/vnd.syft+json",
        "application/vnd.dev.cosign.artifact.sbom.v1+json",
    }
)
ATTESTATION_TYPES = frozenset(
    {
        "application/vnd.in-toto+json",
        "application/vnd.dsse.envelope.v1+json",
        "application/vnd.dev.cosign.artifact.att.v1+json",
    }
)
IMAGE_CONFIGS = frozenset({mt.OCI_CONFIG, mt.DOCKER_CONFIG})
DOCKER_REFERENCE_TYPE = "vnd.docker.reference.type"
"""The annotation BuildKit puts on an index entry that holds attestations, not an image."""


@dataclass(frozen=True, slots=True)
class Kind:
    """What a manifest holds: ``name`` for programs, ``label`` for people."""

    name: str
    label: str


IMAGE = Kind("image", "Container image")
INDEX = Kind("index", "Multi-platform image")
HELM = Kind("helm-chart", "Helm chart")
WASM = Kind("wasm", "WebAssembly module")
SIGNATURE = Kind("signature", "Signature")
SBOM = Kind("sbom", "SBOM")
ATTESTATION = Kind("attestation", "Attestation")
ARTIFACT = Kind("artifact", "OCI artifact")
ARTIFACT_INDEX = Kind("artifact-index", "Artifact index")


def text_of(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def object_at(doc: dict[str, Any], key: str) -> dict[str, Any]:
    """``doc[key]`` when it is a JSON object, else an empty one."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def strings_of(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def kind_of_type(media_type: str | None) -> Kind | None:
    """The kind an artifact type (or config media type) names, if it names a known one."""
    if not media_type:
        return None
    base = media_type.split(";")[0].strip()
    if base == HELM_CONFIG:
        return HELM
    if base in WASM_CONFIGS or base in WASM_LAYERS:
        return WASM
    if media_type in SIGNATURE_TYPES or base in SIGNATURE_TYPES:
        return SIGNATURE
    if base in SBOM_TYPES or "spdx" in base or "cyclonedx" in base:
        return SBOM
    if base in ATTESTATION_TYPES or "in-toto" in base:
        return ATTESTATION
    return None


def classify(doc: dict[str, Any], media_type: str) -> Kind:
    """The kind of the manifest ``doc`` stored under ``media_type``."""
    artifact_type = text_of(doc.get("artifactType"))
    if media_type in mt.INDEXES:
        return kind_of_type(artifact_type) or (ARTIFACT_INDEX if artifact_type else INDEX)
    config = object_at(doc, "config")
    config_type = text_of(config.get("mediaType"))
    layer_types = [
        text_of(layer.get("mediaType")) for layer in objects_of(doc.get("layers")) if layer
    ]
    found = kind_of_type(artifact_type) or kind_of_type(config_type)
    if found is None and COSIGN_SIGNATURE_LAYER in layer_types:
        found = SIGNATURE
    if found is None and any(t in WASM_LAYERS for t in layer_types):
        found = WASM
    if found is not None:
        return found
    if artifact_type is None and config_type in IMAGE_CONFIGS:
        return IMAGE
    return ARTIFACT


def objects_of(value: Any) -> list[dict[str, Any]]:
    return [d for d in value if isinstance(d, dict)] if isinstance(value, list) else []


def descriptor(raw: dict[str, Any]) -> dict[str, Any]:
    """A descriptor as the API shows it (only well-typed fields)."""
    size = raw.get("size")
    out: dict[str, Any] = {
        "media_type": text_of(raw.get("mediaType")) or "",
        "digest": text_of(raw.get("digest")) or "",
        "size": size if isinstance(size, int) and not isinstance(size, bool) else None,
    }
    if text_of(raw.get("artifactType")):
        out["artifact_type"] = raw["artifactType"]
    out["annotations"] = string_map(raw.get("annotations"))
    return out


def platforms(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """An index's entries: each one's platform, descriptor, and whether it is an image or
    something riding along (BuildKit's attestation manifests, ``unknown/unknown``)."""
    out = []
    for raw in objects_of(doc.get("manifests")):
        platform = object_at(raw, "platform")
        entry = descriptor(raw)
        reference_type = entry["annotations"].get(DOCKER_REFERENCE_TYPE)
        entry.update(
            os=text_of(platform.get("os")),
            architecture=text_of(platform.get("architecture")),
            variant=text_of(platform.get("variant")),
            os_version=text_of(platform.get("os.version")),
            role=reference_type or "image",
        )
        out.append(entry)
    return out


def image_config(config: dict[str, Any]) -> dict[str, Any]:
    """The fields of an image config (OCI or Docker) a person looks for."""
    inner = object_at(config, "config")
    ports = inner.get("ExposedPorts")
    volumes = inner.get("Volumes")
    return {
        "created": text_of(config.get("created")),
        "author": text_of(config.get("author")),
        "os": text_of(config.get("os")),
        "architecture": text_of(config.get("architecture")),
        "variant": text_of(config.get("variant")),
        "entrypoint": strings_of(inner.get("Entrypoint")),
        "cmd": strings_of(inner.get("Cmd")),
        "env": strings_of(inner.get("Env")),
        "exposed_ports": sorted(ports) if isinstance(ports, dict) else [],
        "volumes": sorted(volumes) if isinstance(volumes, dict) else [],
        "labels": string_map(inner.get("Labels")),
        "working_dir": text_of(inner.get("WorkingDir")),
        "user": text_of(inner.get("User")),
        "stop_signal": text_of(inner.get("StopSignal")),
    }


def history(config: dict[str, Any], layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each step of the image's history beside the layer it made.

    A step marked ``empty_layer`` made no layer (ENV, CMD, LABEL…); every other step made
    the next layer in order. Layers with no step left (a history shorter than the layers,
    as some tools write) are shown with no step."""
    steps = objects_of(config.get("history"))
    out: list[dict[str, Any]] = []
    remaining = list(layers)
    for step in steps:
        empty = step.get("empty_layer") is True
        layer = None if empty or not remaining else remaining.pop(0)
        out.append(
            {
                "created": text_of(step.get("created")),
                "created_by": text_of(step.get("created_by")),
                "comment": text_of(step.get("comment")),
                "author": text_of(step.get("author")),
                "empty_layer": empty,
                "layer": layer,
            }
        )
    out.extend(
        {
            "created": None,
            "created_by": None,
            "comment": None,
            "author": None,
            "empty_layer": False,
            "layer": layer,
        }
        for layer in remaining
    )
    return out
