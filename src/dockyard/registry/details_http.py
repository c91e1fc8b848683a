"""``GET /api/v1/repositories/{namespace}/{repository}/manifests/{reference}``: a manifest
explained (see :mod:`dockyard.registry.details`), by tag or by digest.

It shows what a pull would fetch (the manifest, its config, its history), so it needs
``cr:PullRepository`` on the repository, as a pull does; a public repository's is
anyone's to read, as its pulls are.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.api import ApiAuth, call_service
from dockyard.catalog.http import RepositoryRoutes
from dockyard.catalog.service import CatalogService
from dockyard.errors import ServiceError
from dockyard.iam import actions
from dockyard.iam.permissions import PermissionService
from dockyard.openapi import Field, Int64, Op, Reply, describe
from dockyard.registry.details import ManifestDetails


class DescriptorOut(Reply):
    """A content descriptor: what a manifest points at."""

    media_type: str = Field(examples=["application/vnd.oci.image.layer.v1.tar+gzip"])
    digest: str = Field(examples=["sha256:" + "0" * 64])
    size: Int64 | None
    artifact_type: str | None = None
    annotations: dict[str, str]


class PlatformOut(DescriptorOut):
    """An entry of an index: a platform's manifest (or an attestation riding along)."""

    os: str | None = Field(examples=["linux"])
    architecture: str | None = Field(examples=["amd64"])
    variant: str | None
    os_version: str | None
    role: str = Field(description="image, or what else the entry is", examples=["image"])
    present: bool = Field(description="whether this registry holds that manifest")
    total_size: Int64 | None = Field(description="bytes a pull of this platform fetches")
    kind: str | None


class ReferrerOut(DescriptorOut):
    kind: str = Field(examples=["signature", "sbom", "attestation"])
    kind_label: str


class ManifestOut(Reply):
    """A manifest explained: its kind, and per kind its platforms (an index) or config,
    layers and history (an image), and the referrers whose subject it is."""

    digest: str
    media_type: str
    size: Int64 = Field(description="bytes of the manifest itself")
    kind: str = Field(
        examples=["image", "index", "helm-chart", "wasm", "signature", "sbom", "artifact"]
    )
    kind_label: str = Field(examples=["Container image"])
    artifact_type: str | None
    annotations: dict[str, str]
    subject: DescriptorOut | None
    raw: str = Field(description="the manifest as stored, byte for byte (as text)")
    total_size: Int64 = Field(description="bytes a pull fetches: manifest, config, layers")
    referrers: list[ReferrerOut]
    platforms: list[PlatformOut] | None = Field(default=None, description="an index's entries")
    config: DescriptorOut | None = None
    layers: list[DescriptorOut] | None = None
    image: dict[str, Any] | None = Field(
        default=None,
        description="an image's config: created, author, entrypoint, cmd, env, "
        "exposed_ports, volumes, labels, working_dir, user…",
    )
    history: list[dict[str, Any]] | None = Field(
        default=None, description="each step's created_by beside the layer it made"
    )
    config_content: dict[str, Any] | None = Field(
        default=None, description="an artifact's config, as it is"
    )


class ManifestRoutes(RepositoryRoutes):
    def __init__(
        self,
        details: ManifestDetails,
        catalog: CatalogService,
        permissions: PermissionService,
        auth: ApiAuth,
        region: str,
    ) -> None:
        super().__init__(catalog, permissions, auth, region)
        self.details = details

    def routes(self) -> list[Route]:
        path = "/api/v1/repositories/{namespace}/{repository}/manifests/{reference}"
        return [Route(path, self.manifest, methods=["GET"])]

    @describe(get=Op("Explain a manifest, by tag or digest", tag="manifests", reply=ManifestOut))
    async def manifest(self, request: Request) -> Response:
        """A manifest explained, by tag or digest: its kind, platforms, config, history
        beside the layers, and referrers (signatures, SBOMs, attestations)."""
        ref = await self._named(request, actions.PULL)
        reference = request.path_params["reference"]
        found = await call_service(lambda: self.details.explain(ref, reference), ServiceError)
        return JSONResponse(found)
