"""``GET /api/v1/repositories/{namespace}/{repository}/manifests/{reference}``: a manifest
explained (see :mod:`dockyard.registry.details`), by tag or by digest.

It shows what a pull would fetch (the manifest, its config, its history), so it needs
``cr:PullRepository`` on the repository, as a pull does; a public repository's is
anyone's to read, as its pulls are.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.api import ApiAuth, call_service
from dockyard.catalog.http import RepositoryRoutes
from dockyard.catalog.service import CatalogService
from dockyard.errors import ServiceError
from dockyard.iam import actions
from dockyard.iam.permissions import PermissionService
from dockyard.registry.details import ManifestDetails


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

    async def manifest(self, request: Request) -> Response:
        """A manifest explained, by tag or digest: its kind, platforms, config, history
        beside the layers, and referrers (signatures, SBOMs, attestations)."""
        ref = await self._named(request, actions.PULL)
        reference = request.path_params["reference"]
        found = await call_service(lambda: self.details.explain(ref, reference), ServiceError)
        return JSONResponse(found)
