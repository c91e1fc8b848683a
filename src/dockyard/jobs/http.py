"""``/api/v1/jobs``: the job queue, for the instance administrator (``cr:ListJobs``,
``cr:RetryJob``): list jobs newest first (filters ``kind`` and ``state``), read one,
and queue a dead or failed one again."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.api import (
    ApiAuth,
    ApiError,
    before_param,
    call_service,
    iso,
    listing,
    page_params,
    path_id,
)
from dockyard.errors import ServiceError
from dockyard.iam import actions
from dockyard.iam.arn import instance_arn
from dockyard.jobs.queue import STATES, Job, JobQueue


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "queue": job.queue,
        "state": job.state,
        "payload": job.payload,
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "run_after": iso(job.run_after),
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "started_at": iso(job.started_at) if job.started_at else None,
        "finished_at": iso(job.finished_at) if job.finished_at else None,
        "lease_owner": job.lease_owner,
        "lease_expires_at": iso(job.lease_expires_at) if job.lease_expires_at else None,
        "last_error": job.last_error,
    }


class JobRoutes:
    def __init__(self, jobs: JobQueue, auth: ApiAuth, region: str) -> None:
        self.jobs = jobs
        self.auth = auth
        self.region = region

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/jobs", self.list, methods=["GET"]),
            Route("/api/v1/jobs/{id}", self.one, methods=["GET"]),
            Route("/api/v1/jobs/{id}/retry", self.retry, methods=["POST"]),
        ]

    async def list(self, request: Request) -> Response:
        await self.auth.authorize(request, actions.LIST_JOBS, instance_arn(self.region))
        limit, after = page_params(request)
        before = before_param(after, "a job")
        query = request.query_params
        state = query.get("state") or None
        if state is not None and state not in STATES:
            raise ApiError(400, "Bad Request", f"state is one of {', '.join(STATES)}")
        kind = query.get("kind") or None
        found = await call_service(
            lambda: self.jobs.recent(kind=kind, state=state, limit=limit, before=before),
            ServiceError,
        )
        return JSONResponse(
            listing([job_json(j) for j in found], limit, request, "id", ("kind", "state"))
        )

    async def one(self, request: Request) -> Response:
        await self.auth.authorize(request, actions.LIST_JOBS, instance_arn(self.region))
        job_id = path_id(request, "id", "job")
        return JSONResponse(
            job_json(await call_service(lambda: self.jobs.get(job_id), ServiceError))
        )

    async def retry(self, request: Request) -> Response:
        await self.auth.authorize(request, actions.RETRY_JOB, instance_arn(self.region))
        job_id = path_id(request, "id", "job")
        job = await call_service(lambda: self.jobs.retry(job_id), ServiceError)
        return JSONResponse(job_json(job))
