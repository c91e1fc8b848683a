"""Every table, in one MetaData that Alembic migrations mirror.

Blob bytes live in the blob store; these tables hold what points at them. A blob is
readable in a repository only through a ``repository_blobs`` link, as in the
distribution registry, so one account cannot read another's layers by guessing digests.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("namespace_quota", Integer, nullable=False, server_default="3"),
    Column("repository_quota", Integer, nullable=False, server_default="300"),
)

users = Table(
    "users",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("password_hash", String(255), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("is_root", Boolean, nullable=False, server_default=sa.false()),
    Column("registry_password_hash", String(255), nullable=True),
    # Signing out ends every management-API session issued before this moment.
    Column("sessions_revoked_at", DateTime(timezone=True), nullable=True),
)

namespaces = Table(
    "namespaces",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("auto_create", Boolean, nullable=False, default=True),
    Column("default_public", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

repositories = Table(
    "repositories",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("namespace_id", ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("is_public", Boolean, nullable=False, default=False),
    Column("summary", String(1024), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    UniqueConstraint("namespace_id", "name", name="uq_repositories_namespace_name"),
)

# touched_at is the last time a push linked or referenced the blob: garbage collection
# spares blobs touched within its grace period, which is what makes it safe during pushes.
blobs = Table(
    "blobs",
    metadata,
    Column("digest", String(200), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("touched_at", DateTime(timezone=True), nullable=False),
)

repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column(
        "repository_id",
        ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("digest", ForeignKey("blobs.digest", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_repository_blobs_digest", "digest"),
)

manifests = Table(
    "manifests",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("repository_id", ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("digest", String(200), nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("artifact_type", String(255), nullable=True),
    Column("subject_digest", String(200), nullable=True),
    Column("annotations", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("touched_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_digest"),
    Index("ix_manifests_subject", "repository_id", "subject_digest"),
    # Scans find a digest's manifest in whichever repository holds it.
    Index("ix_manifests_digest", "digest"),
)

# What a manifest points at: kind "blob" (config, layers) or "manifest" (index children).
manifest_references = Table(
    "manifest_references",
    metadata,
    Column("manifest_id", ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("digest", String(200), primary_key=True),
    Index("ix_manifest_references_digest", "digest"),
)

tags = Table(
    "tags",
    metadata,
    Column(
        "repository_id",
        ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("name", String(128), primary_key=True),
    Column("manifest_id", ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_tags_manifest", "manifest_id"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_pem", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Brute-force counters (iam/throttle.py), keyed "u:<login name>" or "a:<address>": failed
# attempts since window_start, how many lock-outs so far, and until when it is locked
# (both times in seconds since the epoch). Bookkeeping, not audited.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", sa.Float, nullable=False),
    Column("lockouts", Integer, nullable=False, server_default="0"),
    Column("locked_until", sa.Float, nullable=False, server_default="0"),
)

# Policies: system ones (account_id NULL, created by migration 0004), each account's
# custom ones, and the ones the system manages for repository and namespace permissions
# (managed_resource: the ARN, managed_role: read-only, write or admin). document is the
# default version's; policy_versions keeps the versions of custom policies.
# user_policies, group_policies and role_policies attach them.
policies = Table(
    "policies",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("name", String(128), nullable=False),
    Column("document", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("managed_resource", String(512), nullable=True),
    Column("managed_role", String(16), nullable=True),
    UniqueConstraint("account_id", "name", name="uq_policies_account_name"),
)

policy_versions = Table(
    "policy_versions",
    metadata,
    Column("policy_id", ForeignKey("policies.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("document", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

user_policies = Table(
    "user_policies",
    metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("policy_id", ForeignKey("policies.id", ondelete="CASCADE"), primary_key=True),
)

# Access keys: AccessKeyId (the primary key, not secret) and a hashed AccessKeySecret;
# at most two per user. Either works as a login: for the API and for docker login.
access_keys = Table(
    "access_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("secret_hash", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_access_keys_user", "user_id"),
)


groups = Table(
    "groups",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", String(1024), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("account_id", "name", name="uq_groups_account_name"),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_group_members_user", "user_id"),
)

group_policies = Table(
    "group_policies",
    metadata,
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("policy_id", ForeignKey("policies.id", ondelete="CASCADE"), primary_key=True),
)

# RAM roles: assumed through STS by whoever the trust policy names.
roles = Table(
    "roles",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", String(1024), nullable=False, server_default=""),
    Column("trust_policy", Text, nullable=False),
    Column("max_session_seconds", Integer, nullable=False, server_default="3600"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("account_id", "name", name="uq_roles_account_name"),
)

role_policies = Table(
    "role_policies",
    metadata,
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    Column("policy_id", ForeignKey("policies.id", ondelete="CASCADE"), primary_key=True),
)

# STS credentials from AssumeRole: AccessKeyId ``STS.…``, a hashed secret, the role and
# the optional inline policy that narrows it, until expires_at.
sts_sessions = Table(
    "sts_sessions",
    metadata,
    Column("access_key_id", String(64), primary_key=True),
    Column("secret_hash", String(255), nullable=False),
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), nullable=False),
    Column("session_name", String(64), nullable=False),
    Column("policy", Text, nullable=True),
    Column("assumed_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_sts_sessions_expires", "expires_at"),
)

# Every change and every denied attempt: who, what, on what, when, from where.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(128), nullable=False),
    Column("resource", String(1024), nullable=False),
    Column("source_ip", String(64), nullable=False, server_default=""),
    Column("allowed", Boolean, nullable=False),
    Column("status", Integer, nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Index("ix_audit_log_account", "account_id", "id"),
)

# Events: what happened, written in the transaction of the change itself (the
# transactional outbox). Fields that do not apply to a type are empty strings.
events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("namespace", String(255), nullable=False, server_default=""),
    Column("repository", String(255), nullable=False, server_default=""),
    Column("tag", String(128), nullable=False, server_default=""),
    Column("digest", String(200), nullable=False, server_default=""),
    Column("media_type", String(255), nullable=False, server_default=""),
    Column("size", BigInteger, nullable=False, server_default="0"),
    Column("actor", String(200), nullable=False, server_default=""),
    Column("request_id", String(64), nullable=False, server_default=""),
    Column("client_address", String(64), nullable=False, server_default=""),
    Column("repository_public", Boolean, nullable=False, server_default=sa.false()),
    Column("repository_created_at", DateTime(timezone=True), nullable=True),
    # What the type adds (a scan_completed event's counts and changes), as JSON.
    Column("detail", Text, nullable=True),
    Index("ix_events_account", "account_id", "id"),
    Index("ix_events_at", "at"),
)

# The durable job queue: webhook deliveries now, scans and builds next. A worker claims
# a job by setting its lease (owner, expiry) and renews it while the job runs; a job
# whose lease ran out is claimed again by another worker (at-least-once).
jobs = Table(
    "jobs",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("queue", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False),
    Column("run_after", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("concurrency_key", String(128), nullable=True),
    Index("ix_jobs_claim", "queue", "state", "run_after"),
    Index("ix_jobs_kind_state", "kind", "state"),
    Index("ix_jobs_concurrency", "concurrency_key", "state"),
)

# Symmetric keys that encrypt secrets at rest (webhook secrets and headers, build
# credentials); kept in the database so every replica and worker reads them.
secret_keys = Table(
    "secret_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Webhooks of a repository (repository_id set) or of a whole namespace (NULL).
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("namespace_id", ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("repository_id", ForeignKey("repositories.id", ondelete="CASCADE"), nullable=True),
    Column("name", String(64), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("trigger", Text, nullable=False),
    Column("events", Text, nullable=False),
    Column("format", String(16), nullable=False),
    Column("headers", Text, nullable=True),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text, nullable=True),
    Column("previous_secret_expires_at", DateTime(timezone=True), nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text, nullable=False, server_default=""),
    Column("failing_since", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_webhooks_scope", "namespace_id", "repository_id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("webhook_id", ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", ForeignKey("events.id", ondelete="CASCADE"), nullable=True),
    Column("event_type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("request_url", String(2048), nullable=False, server_default=""),
    Column("request_headers", Text, nullable=False, server_default="{}"),
    Column("request_body", Text, nullable=False, server_default=""),
    Column("response_status", Integer, nullable=True),
    Column("response_headers", Text, nullable=False, server_default="{}"),
    Column("response_body", Text, nullable=False, server_default=""),
    UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_webhook_event"),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("delivery_id", ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status", Integer, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("error", Text, nullable=False, server_default=""),
    Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
)

# The shared vulnerability database (dockyard.scanning.service_db): OSV records as
# imported, one row per id, the raw JSON zlib-compressed. ``version`` is the import that
# last wrote the record, so a process brings its local matcher up to date by reading the
# records newer than the version it has. ``modified`` is the record's own time in a
# sortable UTC form (an older copy never replaces a newer one).
vulndb_records = Table(
    "vulndb_records",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("modified", String(32), nullable=False),
    Column("withdrawn", Boolean, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_vulndb_records_version", "version", "id"),
)

# The ecosystems (without release) each record that is not withdrawn affects: the counts
# per ecosystem, and which records a source's ecosystem brought.
vulndb_ecosystems = Table(
    "vulndb_ecosystems",
    metadata,
    Column("record_id", String(255), primary_key=True),
    Column("ecosystem", String(128), primary_key=True),
    Index("ix_vulndb_ecosystems_ecosystem", "ecosystem"),
)

# One row (id 1): the shared version (0 until a first import changes something), an id
# of this store (a local matcher cache made from another store is rebuilt), the last
# successful import and when the periodic refresh from DOCKYARD_VULNDB_SOURCE is next due.
vulndb_state = Table(
    "vulndb_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
    Column("store_id", String(32), nullable=False),
    Column("last_import_at", DateTime(timezone=True), nullable=True),
    Column("next_refresh_at", DateTime(timezone=True), nullable=True),
)

# Every import (an upload through the API, a sync from the source, the CLI): its state
# (queued, running, succeeded, failed), progress and result. ``upload_id`` names the
# uploaded file in the blob store's upload area until the import ends.
vulndb_imports = Table(
    "vulndb_imports",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("source", String(2048), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("filename", String(255), nullable=False, server_default=""),
    Column("upload_id", String(128), nullable=True),
    Column("size", BigInteger, nullable=False, server_default="0"),
    Column("job_id", BigInteger, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("progress_done", Integer, nullable=False, server_default="0"),
    Column("progress_total", Integer, nullable=False, server_default="0"),
    Column("added", Integer, nullable=False, server_default="0"),
    Column("updated", Integer, nullable=False, server_default="0"),
    Column("kept", Integer, nullable=False, server_default="0"),
    Column("invalid", Integer, nullable=False, server_default="0"),
    Column("version", BigInteger, nullable=True),
    Column("errors", Text, nullable=False, server_default="[]"),
    Column("error", Text, nullable=False, server_default=""),
)

# What a sync last fetched from each place of the source (an URL, a file): the HTTP
# validators (ETag, Last-Modified) or a file's size and modification time, so that an
# unchanged archive is neither downloaded nor imported again.
vulndb_sources = Table(
    "vulndb_sources",
    metadata,
    Column("location", String(1024), primary_key=True),
    Column("etag", String(512), nullable=False, server_default=""),
    Column("last_modified", String(128), nullable=False, server_default=""),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)

# Vulnerability scans, one row per manifest digest: a result serves every tag and
# repository that points at the digest. ``kind`` is ``image`` or ``index`` (an index's
# row sums its platforms' rows). ``findings`` is {level: [vulnerability ids]} (one entry
# per finding), what pull blocking reads with the allowlist; ``result`` is the engine's
# JSON report, zlib-compressed; ``ecosystems`` the OSV ecosystems its packages are
# matched in (``Debian:12,PyPI``, sorted), what a vulnerability database sync fetches.
scan_results = Table(
    "scan_results",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("digest", String(200), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("platform", String(64), nullable=False, server_default=""),
    Column("parent_digest", String(200), nullable=True),
    Column("repository_id", ForeignKey("repositories.id", ondelete="SET NULL"), nullable=True),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("database", String(128), nullable=False, server_default=""),
    Column("high", Integer, nullable=False, server_default="0"),
    Column("medium", Integer, nullable=False, server_default="0"),
    Column("low", Integer, nullable=False, server_default="0"),
    Column("unknown", Integer, nullable=False, server_default="0"),
    Column("findings", Text, nullable=False, server_default="{}"),
    Column("result", LargeBinary, nullable=True),
    Column("ecosystems", Text, nullable=False, server_default=""),
    Column("queued_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Index("ix_scan_results_parent", "parent_digest"),
)

# A namespace's security settings; a namespace without a row has the defaults (scan on
# push, no pull blocking).
namespace_security = Table(
    "namespace_security",
    metadata,
    Column("namespace_id", ForeignKey("namespaces.id", ondelete="CASCADE"), primary_key=True),
    Column("scan_on_push", Boolean, nullable=False, server_default=sa.true()),
    Column("block_pull_severity", String(16), nullable=False, server_default="none"),
    Column("block_unscanned", Boolean, nullable=False, server_default=sa.false()),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# A repository's override of its namespace's scan_on_push (NULL: the namespace's).
repository_security = Table(
    "repository_security",
    metadata,
    Column("repository_id", ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("scan_on_push", Boolean, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Vulnerability ids that do not count for a namespace's pull blocking (until expiry).
scan_allowlist = Table(
    "scan_allowlist",
    metadata,
    Column("namespace_id", ForeignKey("namespaces.id", ondelete="CASCADE"), primary_key=True),
    Column("vulnerability_id", String(200), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("comment", String(1024), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# When a manifest was last pulled (written at most once an hour per digest and process):
# what a rescan after a database import picks besides recent pushes.
manifest_pulls = Table(
    "manifest_pulls",
    metadata,
    Column("digest", String(200), primary_key=True),
    Column("pulled_at", DateTime(timezone=True), nullable=False),
    Index("ix_manifest_pulls_at", "pulled_at"),
)

# Builds from git (builds/). One code source per repository: where its code lives, the
# credentials (sealed with the secret box; credentials_kind says which kind is set, so
# the API can say so without opening them), how builds run, and the hook that triggers
# them (hook_id is the path part of its URL; its secret sealed). polled_refs is what the
# last poll saw (JSON ref -> sha), so only new commits build.
code_sources = Table(
    "code_sources",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "repository_id",
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("type", String(16), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("credentials", Text, nullable=True),
    Column("credentials_kind", String(16), nullable=False, server_default=""),
    Column("auto_build", Boolean, nullable=False),
    Column("build_without_cache", Boolean, nullable=False),
    Column("build_pool", String(64), nullable=False),
    Column("poll_interval", Integer, nullable=True),
    Column("hook_id", String(64), nullable=False, unique=True),
    Column("hook_secret", Text, nullable=False),
    Column("polled_refs", Text, nullable=True),
    Column("polled_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Build rules of a repository (at most 20): which refs build, from which Dockerfile,
# into which tags. image_tags and build_args are JSON; secrets are sealed JSON.
build_rules = Table(
    "build_rules",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("repository_id", ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(16), nullable=False),
    Column("ref", String(255), nullable=False),
    Column("dockerfile_dir", String(1024), nullable=False),
    Column("dockerfile_name", String(255), nullable=False),
    Column("image_tags", Text, nullable=False),
    Column("build_args", Text, nullable=False, server_default="{}"),
    Column("secrets", Text, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_build_rules_repository", "repository_id", "id"),
)

# One run of a rule on one commit. rule_id is NULL for the built-in release rule (and
# once the rule is deleted; rule_ref keeps what it was). spec is the rule's build
# settings as they were when the build was queued (JSON, no secrets); image_tags the
# rendered tags. Stage times: started_at (cloning), built_at (building), pushed_at
# (pushing), finished_at.
builds = Table(
    "builds",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("repository_id", ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("rule_id", ForeignKey("build_rules.id", ondelete="SET NULL"), nullable=True),
    Column("rule_ref", String(255), nullable=False, server_default=""),
    Column("trigger", String(16), nullable=False),
    Column("triggered_by", String(200), nullable=False, server_default=""),
    Column("hook_delivery_id", BigInteger, nullable=True),
    Column("ref_type", String(16), nullable=False),
    Column("ref_name", String(255), nullable=False),
    Column("commit_sha", String(64), nullable=False),
    Column("commit_subject", String(1024), nullable=False, server_default=""),
    Column("status", String(16), nullable=False),
    Column("spec", Text, nullable=False),
    Column("image_tags", Text, nullable=False, server_default="[]"),
    Column("digest", String(200), nullable=False, server_default=""),
    Column("error", String(1024), nullable=False, server_default=""),
    Column("worker", String(128), nullable=False, server_default=""),
    Column("cancel_requested", Boolean, nullable=False, server_default=sa.false()),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("log_bytes", BigInteger, nullable=False, server_default="0"),
    Column("log_lines", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("built_at", DateTime(timezone=True), nullable=True),
    Column("pushed_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Index("ix_builds_repository", "repository_id", "id"),
    Index("ix_builds_status", "status"),
)

# A build's log, one row per line (masked before it is written), bounded per build.
build_log_lines = Table(
    "build_log_lines",
    metadata,
    Column("build_id", ForeignKey("builds.id", ondelete="CASCADE"), primary_key=True),
    Column("line", Integer, primary_key=True, autoincrement=False),
    Column("stage", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("text", Text, nullable=False),
)

# Each request to a source's hook URL: what it was and what it triggered (build ids).
hook_deliveries = Table(
    "hook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("source_id", ForeignKey("code_sources.id", ondelete="CASCADE"), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("provider", String(16), nullable=False, server_default=""),
    Column("delivery", String(128), nullable=False, server_default=""),
    Column("kind", String(16), nullable=False),
    Column("ref", String(255), nullable=False, server_default=""),
    Column("commit_sha", String(64), nullable=False, server_default=""),
    Column("status", Integer, nullable=False),
    Column("outcome", Text, nullable=False, server_default=""),
    Column("builds", Text, nullable=False, server_default="[]"),
    Index("ix_hook_deliveries_source", "source_id", "id"),
)
