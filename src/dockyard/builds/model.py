"""What the builds domain stores and answers: sources, rules, builds, log lines and hook
deliveries as plain values, with the limits that bound them (pure, no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

PENDING: Final = "pending"
CLONING: Final = "cloning"
BUILDING: Final = "building"
PUSHING: Final = "pushing"
SUCCESS: Final = "success"
FAILED: Final = "failed"
CANCELED: Final = "canceled"
TIMED_OUT: Final = "timed_out"
STATES: Final = (PENDING, CLONING, BUILDING, PUSHING, SUCCESS, FAILED, CANCELED, TIMED_OUT)
RUNNING: Final = (CLONING, BUILDING, PUSHING)
FINAL: Final = (SUCCESS, FAILED, CANCELED, TIMED_OUT)

TRIGGERS: Final = ("manual", "push", "poll")
MAX_RULES: Final = 20
"""Build rules per repository (as in ACR)."""
LOG_LIMIT: Final = 10 * 1024 * 1024
"""Bytes of log kept per build; then one truncation note and nothing more."""
MAX_SECRETS: Final = 20
MAX_SECRET_BYTES: Final = 64 * 1024
SECRET_ID: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
POOL: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
DEFAULT_POOL: Final = "default"
MIN_POLL: Final = 10
MAX_POLL: Final = 7 * 24 * 3600
BUILTIN_RULE_ID: Final = 0
"""The id the API gives the built-in release rule (no stored rule has id 0)."""


def build_queue(pool: str) -> str:
    """The job queue a build pool's builds wait on: ``builds`` for the default pool,
    ``builds.NAME`` for another, so a worker started with ``--build-pool NAME`` claims
    only those."""
    return "builds" if pool == DEFAULT_POOL else f"builds.{pool}"


@dataclass(frozen=True, slots=True)
class Source:
    repository: str
    type: str
    url: str
    credentials_kind: str
    """``token`` (username and token), ``ssh_key``, or '' (none)."""
    auto_build: bool
    build_without_cache: bool
    build_pool: str
    poll_interval: int | None
    hook_id: str
    created_at: datetime
    updated_at: datetime
    polled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    type: str
    ref: str
    dockerfile_dir: str
    dockerfile_name: str
    image_tags: tuple[str, ...]
    build_args: dict[str, str]
    enabled: bool
    secret_ids: tuple[str, ...] = ()
    builtin: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Build:
    id: int
    repository: str
    rule_id: int | None
    rule_ref: str
    trigger: str
    triggered_by: str
    hook_delivery_id: int | None
    ref_type: str
    ref_name: str
    commit_sha: str
    commit_subject: str
    status: str
    image_tags: tuple[str, ...]
    digest: str
    error: str
    worker: str
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    built_at: datetime | None
    pushed_at: datetime | None
    finished_at: datetime | None
    log_lines: int = 0
    spec: dict[str, object] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class LogLine:
    line: int
    stage: str
    at: datetime
    text: str


@dataclass(frozen=True, slots=True)
class HookDelivery:
    id: int
    received_at: datetime
    provider: str
    delivery: str
    kind: str
    ref: str
    commit: str
    status: int
    outcome: str
    builds: tuple[int, ...]
