"""``/api/v1/jobs``: the job queue, for the instance administrator (``cr:ListJobs``,
``cr:RetryJob``): list jobs newest first (filters ``kind`` and ``state``), read one,
and queue a dead or failed one again."""

from __future__ import annotations

from typing import Annotated, Any

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
    paged,
    path_id,
)
from dockyard.errors import ServiceError
from dockyard.iam import actions
from dockyard.iam.arn import instance_arn
from dockyard.jobs.queue import QUEUES, STATES, Job, JobQueue
from dockyard.openapi import Field, Int64, Op, Query, Reply, Timestamp, describe

State = Annotated[str, Field(json_schema_extra={"enum": list(STATES)})]


class JobOut(Reply):
    """A job on the durable queue."""

    id: Int64
    kind: str = Field(examples=["webhooks.deliver"])
    queue: str = Field(json_schema_extra={"enum": list(QUEUES)})
    state: State
    payload: dict[str, Any]
    priority: int
    attempts: int
    max_attempts: int
    run_after: Timestamp
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    lease_owner: str | None = Field(description="the worker running it")
    lease_expires_at: Timestamp | None
    last_error: str


class JobQuery(Query):
    kind: str | None = Field(default=None, description="only jobs of this kind")
    state: State | None = Field(default=None, description="only jobs in this state")


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

    @describe(
        get=Op("List jobs, newest first", tag="jobs", reply=JobOut, query=JobQuery, paged=True)
    )
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
        return paged(listing([job_json(j) for j in found], limit, request, "id", ("kind", "state")))

    @describe(get=Op("Read a job", tag="jobs", reply=JobOut))
    async def one(self, request: Request) -> Response:
        await self.auth.authorize(request, actions.LIST_JOBS, instance_arn(self.region))
        job_id = path_id(request, "id", "job")
        return JSONResponse(
            job_json(await call_service(lambda: self.jobs.get(job_id), ServiceError))
        )

    @describe(post=Op("Queue a dead or failed job again", tag="jobs", reply=JobOut))
    async def retry(self, request: Request) -> Response:
        await self.auth.authorize(request, actions.RETRY_JOB, instance_arn(self.region))
        job_id = path_id(request, "id", "job")
        job = await call_service(lambda: self.jobs.retry(job_id), ServiceError)
        return JSONResponse(job_json(job))
