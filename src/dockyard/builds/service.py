"""Code sources, build rules and builds: what the API and the triggers change.

A repository has at most one code source (a git URL, sealed credentials, how its builds
run) and up to 20 build rules. A build is queued — a ``builds`` row and a job on the
source's build pool queue, in one transaction with its audit record — by "Build Now", by a
code host's hook or by polling; the runner (:mod:`dockyard.builds.runner`) takes it from
there. Every build records the exact commit it builds, resolved when it is queued, so a
branch that moves on while the build waits changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dockyard.builds import git
from dockyard.builds.hooks import poll_events, split_ref
from dockyard.builds.model import (
    BUILTIN_RULE_ID,
    CANCELED,
    DEFAULT_POOL,
    FAILED,
    FINAL,
    MAX_POLL,
    MAX_RULES,
    MAX_SECRET_BYTES,
    MAX_SECRETS,
    MIN_POLL,
    PENDING,
    POOL,
    SECRET_ID,
    STATES,
    Build,
    HookDelivery,
    LogLine,
    Rule,
    Source,
    build_queue,
)
from dockyard.builds.rules import (
    BUILTIN_RELEASE_RULE,
    RefMatch,
    RuleError,
    RuleSpec,
    compile_ref,
    is_regex,
    matching_rules,
    render_tags,
)
from dockyard.changes import Change, Changes
from dockyard.db import tables as t
from dockyard.db.engine import Database, as_utc, utcnow
from dockyard.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from dockyard.events.model import BUILD_COMPLETED
from dockyard.events.outbox import Subject
from dockyard.jobs.queue import JobSpec, enqueue
from dockyard.oci.reference import RepositoryName
from dockyard.origin import Origin
from dockyard.secretbox import SecretBox

_S = t.code_sources.c
_R = t.build_rules.c
_B = t.builds.c
_L = t.build_log_lines.c
_H = t.hook_deliveries.c
log = logging.getLogger(__name__)


def build_job(pool: str, account_limit: int = 0) -> JobSpec:
    """The job that runs one build on ``pool``'s queue: tried a second time when its
    worker dies (a third claim only records that the worker was lost); at most
    ``account_limit`` of one account's builds run at once (the others wait)."""
    return JobSpec(
        "builds.run", queue=build_queue(pool), max_attempts=3, concurrency_limit=account_limit
    )


class SourceError(ServiceError):
    """The code source could not be read: the git error's kind is the problem's code."""

    def __init__(self, error: git.GitError) -> None:
        kind = getattr(error, "kind", "failed")
        super().__init__(str(error), code=f"source.{kind}")
        self.status = {"invalid_url": 400, "not_allowed": 400, "auth": 422, "not_found": 422}.get(
            kind, 502
        )


@dataclass(frozen=True, slots=True)
class SourceInput:
    url: str
    type: str = "git"
    credentials: git.Credentials | None = None
    keep_credentials: bool = True
    """When ``credentials`` is None: keep the stored ones (True) or remove them."""
    auto_build: bool = True
    build_without_cache: bool = False
    build_pool: str = DEFAULT_POOL
    poll_interval: int | None = None


@dataclass(frozen=True, slots=True)
class RuleInput:
    """A create or update request; None leaves a field as it is (update) or takes its
    default (create)."""

    type: str | None = None
    ref: str | None = None
    dockerfile_dir: str | None = None
    dockerfile_name: str | None = None
    image_tags: tuple[str, ...] | None = None
    build_args: dict[str, str] | None = None
    secrets: dict[str, str] | None = None
    enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class Repo:
    """The repository a build belongs to, as the events and tokens need it."""

    id: int
    name: RepositoryName
    account_id: int | None
    is_public: bool
    created_at: datetime


def _repo(conn: Connection, name: RepositoryName) -> Repo:
    row = conn.execute(
        sa.select(
            t.repositories.c.id,
            t.repositories.c.is_public,
            t.repositories.c.created_at,
            t.namespaces.c.account_id,
        )
        .select_from(t.repositories.join(t.namespaces))
        .where(t.namespaces.c.name == name.namespace, t.repositories.c.name == name.repository)
    ).first()
    if row is None:
        raise NotFound(f"repository {name} does not exist")
    return Repo(int(row.id), name, row.account_id, bool(row.is_public), as_utc(row.created_at))


def repo_by_id(conn: Connection, repository_id: int) -> Repo:
    row = conn.execute(
        sa.select(
            t.repositories.c.name,
            t.repositories.c.is_public,
            t.repositories.c.created_at,
            t.namespaces.c.name.label("namespace"),
            t.namespaces.c.account_id,
        )
        .select_from(t.repositories.join(t.namespaces))
        .where(t.repositories.c.id == repository_id)
    ).one()
    return Repo(
        repository_id,
        RepositoryName(row.namespace, row.name),
        row.account_id,
        bool(row.is_public),
        as_utc(row.created_at),
    )


def _check_pool(pool: str) -> None:
    if not POOL.fullmatch(pool):
        raise Invalid(
            "build_pool: 1 to 32 lowercase letters, digits and '-', starting with a letter or digit"
        )


def _check_secrets(values: Mapping[str, str]) -> None:
    if len(values) > MAX_SECRETS:
        raise Invalid(f"secrets: at most {MAX_SECRETS}")
    for key, value in values.items():
        if not SECRET_ID.fullmatch(key):
            raise Invalid(f"secrets: {key[:64]!r} is not a valid id (letters, digits, _ . -)")
        if not isinstance(value, str) or not value or len(value.encode()) > MAX_SECRET_BYTES:
            raise Invalid(f"secrets.{key}: a non-empty string of at most {MAX_SECRET_BYTES} bytes")


def _rule_error(exc: RuleError) -> Invalid:
    """The rule's complaint, led by the field it is about (as every 400 names one)."""
    message = str(exc)
    if exc.field and not message.startswith(exc.field):
        message = f"{exc.field}: {message}"
    return Invalid(message)


def _credentials_kind(creds: git.Credentials | None) -> str:
    if creds is None:
        return ""
    if creds.ssh_private_key:
        return "ssh_key"
    return "token" if creds.token or creds.username else ""


def _source(row: Any, name: RepositoryName) -> Source:
    return Source(
        repository=str(name),
        type=row.type,
        url=row.url,
        credentials_kind=row.credentials_kind,
        auto_build=bool(row.auto_build),
        build_without_cache=bool(row.build_without_cache),
        build_pool=row.build_pool,
        poll_interval=row.poll_interval,
        hook_id=row.hook_id,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        polled_at=as_utc(row.polled_at) if row.polled_at else None,
    )


def _rule(row: Any) -> Rule:
    return Rule(
        id=int(row.id),
        type=row.type,
        ref=row.ref,
        dockerfile_dir=row.dockerfile_dir,
        dockerfile_name=row.dockerfile_name,
        image_tags=tuple(json.loads(row.image_tags)),
        build_args=json.loads(row.build_args),
        enabled=bool(row.enabled),
        secret_ids=(),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def builtin_rule() -> Rule:
    spec = BUILTIN_RELEASE_RULE
    return Rule(
        id=BUILTIN_RULE_ID,
        type=spec.type,
        ref=spec.ref,
        dockerfile_dir=spec.dockerfile_dir,
        dockerfile_name=spec.dockerfile_name,
        image_tags=tuple(spec.image_tags),
        build_args=dict(spec.build_args),
        enabled=spec.enabled,
        builtin=True,
    )


def rule_spec(rule: Rule) -> RuleSpec:
    if rule.builtin:
        return BUILTIN_RELEASE_RULE
    return RuleSpec(
        id=rule.id,
        type=rule.type,
        ref=rule.ref,
        dockerfile_dir=rule.dockerfile_dir,
        dockerfile_name=rule.dockerfile_name,
        image_tags=tuple(rule.image_tags),
        build_args=dict(rule.build_args),
        enabled=rule.enabled,
    )


def _build(row: Any, name: str) -> Build:
    def when(value: Any) -> datetime | None:
        return as_utc(value) if value else None

    return Build(
        id=int(row.id),
        repository=name,
        rule_id=row.rule_id,
        rule_ref=row.rule_ref,
        trigger=row.trigger,
        triggered_by=row.triggered_by,
        hook_delivery_id=row.hook_delivery_id,
        ref_type=row.ref_type,
        ref_name=row.ref_name,
        commit_sha=row.commit_sha,
        commit_subject=row.commit_subject,
        status=row.status,
        image_tags=tuple(json.loads(row.image_tags)),
        digest=row.digest,
        error=row.error,
        worker=row.worker,
        cancel_requested=bool(row.cancel_requested),
        created_at=as_utc(row.created_at),
        started_at=when(row.started_at),
        built_at=when(row.built_at),
        pushed_at=when(row.pushed_at),
        finished_at=when(row.finished_at),
        log_lines=int(row.log_lines),
        spec=json.loads(row.spec),
    )


def _owned(conn: Connection, table: sa.Table, repo: Repo, row_id: int, noun: str) -> Any:
    """Row ``row_id`` of ``table`` when it belongs to ``repo``; else 404 naming ``noun``."""
    row = conn.execute(
        sa.select(table).where(table.c.id == row_id, table.c.repository_id == repo.id)
    ).first()
    if row is None:
        raise NotFound(f"{noun} {row_id} does not exist on {repo.name}")
    return row


def _lines(conn: Connection, build_id: int, offset: int, limit: int) -> list[LogLine]:
    rows = conn.execute(
        sa.select(_L.line, _L.stage, _L.at, _L.text)
        .where(_L.build_id == build_id, _L.line > offset)
        .order_by(_L.line)
        .limit(limit)
    ).all()
    return [LogLine(int(r.line), r.stage, as_utc(r.at), r.text) for r in rows]


def ref_kind(full_ref: str) -> tuple[str, str] | None:
    """``refs/heads/x`` → (branch, x); ``refs/tags/x`` → (tag, x); else None."""
    try:
        return split_ref(full_ref)
    except ValueError:
        return None


def full_ref(kind: str, name: str) -> str:
    return f"refs/heads/{name}" if kind == "branch" else f"refs/tags/{name}"


class BuildService:
    def __init__(
        self,
        db: Database,
        changes: Changes,
        secrets_box: SecretBox,
        *,
        allow_local: bool,
        account_limit: int = 2,
        git_timeout: float = 30.0,
    ) -> None:
        self.db = db
        self.changes = changes
        self.box = secrets_box
        self.allow_local = allow_local
        self.account_limit = account_limit
        self.git_timeout = git_timeout

    # -- sources ---------------------------------------------------------------------

    def _source_row(self, conn: Connection, repo: Repo) -> Any:
        row = conn.execute(sa.select(t.code_sources).where(_S.repository_id == repo.id)).first()
        if row is None:
            raise NotFound(f"repository {repo.name} has no code source")
        return row

    def get_source(self, name: RepositoryName) -> Source:
        with self.db.read() as conn:
            return _source(self._source_row(conn, _repo(conn, name)), name)

    def check_url(self, url: str) -> str:
        try:
            return git.check_url(url, allow_local=self.allow_local)
        except git.GitError as exc:
            raise Invalid(f"url: {exc}") from exc

    def put_source(
        self, origin: Origin, name: RepositoryName, spec: SourceInput
    ) -> tuple[Source, str | None]:
        """Bind (or change) the repository's code source; returns it, and the hook secret
        when the source is new (shown this once, like a webhook's)."""
        if spec.type != "git":
            raise Invalid('type: "git" is the only kind of code source')
        url = self.check_url(spec.url)
        _check_pool(spec.build_pool)
        if spec.poll_interval is not None and not MIN_POLL <= spec.poll_interval <= MAX_POLL:
            raise Invalid(f"poll_interval: from {MIN_POLL} to {MAX_POLL} seconds, or null")
        values: dict[str, Any] = {
            "type": spec.type,
            "url": url,
            "auto_build": spec.auto_build,
            "build_without_cache": spec.build_without_cache,
            "build_pool": spec.build_pool,
            "poll_interval": spec.poll_interval,
            "updated_at": utcnow(),
        }
        if spec.credentials is not None or not spec.keep_credentials:
            kind = _credentials_kind(spec.credentials)
            values["credentials_kind"] = kind
            values["credentials"] = (
                self.box.seal_json(
                    {
                        "username": spec.credentials.username,
                        "token": spec.credentials.token,
                        "ssh_private_key": spec.credentials.ssh_private_key,
                    }
                )
                if spec.credentials is not None and kind
                else None
            )
        secret: str | None = None
        with self.changes.open(origin) as change:
            repo = _repo(change.conn, name)
            row = change.conn.execute(
                sa.select(_S.id, _S.url).where(_S.repository_id == repo.id)
            ).first()
            if row is None:
                origin.status = 201  # created: the audit record says so
                secret = secrets.token_urlsafe(32)
                values.setdefault("credentials_kind", "")
                change.conn.execute(
                    sa.insert(t.code_sources).values(
                        repository_id=repo.id,
                        hook_id=secrets.token_urlsafe(18),
                        hook_secret=self.box.seal(secret),
                        created_at=values["updated_at"],
                        **values,
                    )
                )
            else:
                if row.url != url:  # another repository: what was polled says nothing
                    values["polled_refs"] = None
                change.conn.execute(
                    sa.update(t.code_sources).where(_S.id == row.id).values(**values)
                )
            source = _source(self._source_row(change.conn, repo), name)
        return source, secret

    def delete_source(self, origin: Origin, name: RepositoryName) -> None:
        """Unbind the source (its hook stops working; rules and build history stay)."""
        with self.changes.open(origin) as change:
            row = self._source_row(change.conn, _repo(change.conn, name))
            change.conn.execute(sa.delete(t.code_sources).where(_S.id == row.id))

    def rotate_hook_secret(self, origin: Origin, name: RepositoryName) -> str:
        secret = secrets.token_urlsafe(32)
        with self.changes.open(origin) as change:
            row = self._source_row(change.conn, _repo(change.conn, name))
            change.conn.execute(
                sa.update(t.code_sources)
                .where(_S.id == row.id)
                .values(hook_secret=self.box.seal(secret), updated_at=utcnow())
            )
        return secret

    def credentials_of(self, row: Any) -> git.Credentials | None:
        if not row.credentials:
            return None
        value = self.box.open_json(row.credentials)
        return git.Credentials(
            username=value.get("username", ""),
            token=value.get("token", ""),
            ssh_private_key=value.get("ssh_private_key", ""),
        )

    def hook_secret_of(self, row: Any) -> str:
        return self.box.open(row.hook_secret)

    def ls_remote(self, row: Any) -> dict[str, str]:
        try:
            return git.ls_remote(
                row.url,
                self.credentials_of(row),
                timeout=self.git_timeout,
                allow_local=self.allow_local,
            )
        except git.GitError as exc:
            raise SourceError(exc) from exc

    def check_source(self, name: RepositoryName) -> dict[str, list[dict[str, str]]]:
        """The source's branches and tags (``git ls-remote`` with its credentials)."""
        with self.db.read() as conn:
            row = self._source_row(conn, _repo(conn, name))
        refs = self.ls_remote(row)
        out: dict[str, list[dict[str, str]]] = {"branches": [], "tags": []}
        for ref, sha in sorted(refs.items()):
            parsed = ref_kind(ref)
            if parsed is None or ref.endswith("^{}"):
                continue
            kind, short = parsed
            out["branches" if kind == "branch" else "tags"].append({"name": short, "commit": sha})
        return out

    # -- rules -----------------------------------------------------------------------

    def rules(self, name: RepositoryName) -> list[Rule]:
        """The repository's rules, oldest first, then the built-in release rule."""
        with self.db.read() as conn:
            repo = _repo(conn, name)
            rows = conn.execute(
                sa.select(t.build_rules).where(_R.repository_id == repo.id).order_by(_R.id)
            ).all()
            found = [self._with_secret_ids(r) for r in rows]
        return [*found, builtin_rule()]

    def _with_secret_ids(self, row: Any) -> Rule:
        rule = _rule(row)
        if not row.secrets:
            return rule
        ids = tuple(sorted(self.box.open_json(row.secrets)))
        return dataclasses.replace(rule, secret_ids=ids)

    def rule(self, name: RepositoryName, rule_id: int) -> Rule:
        if rule_id == BUILTIN_RULE_ID:
            with self.db.read() as conn:
                _repo(conn, name)
            return builtin_rule()
        with self.db.read() as conn:
            return self._with_secret_ids(self._rule_row(conn, _repo(conn, name), rule_id))

    def rule_secrets(self, conn: Connection, rule_id: int | None) -> dict[str, str]:
        if rule_id is None:
            return {}
        sealed = conn.execute(sa.select(_R.secrets).where(_R.id == rule_id)).scalar()
        return dict(self.box.open_json(sealed)) if sealed else {}

    @staticmethod
    def _rule_row(conn: Connection, repo: Repo, rule_id: int) -> Any:
        return _owned(conn, t.build_rules, repo, rule_id, "build rule")

    @staticmethod
    def _validated(spec: RuleSpec) -> RuleSpec:
        try:
            return spec.checked()
        except RuleError as exc:
            raise _rule_error(exc) from exc

    def create_rule(self, origin: Origin, name: RepositoryName, spec: RuleInput) -> Rule:
        if spec.ref is None:
            raise Invalid("ref is required")
        rule = self._validated(
            RuleSpec(
                type=spec.type or "branch",
                ref=spec.ref,
                dockerfile_dir=spec.dockerfile_dir if spec.dockerfile_dir is not None else "/",
                dockerfile_name=spec.dockerfile_name or "Dockerfile",
                image_tags=spec.image_tags if spec.image_tags is not None else ("latest",),
                build_args=spec.build_args or {},
                enabled=True if spec.enabled is None else spec.enabled,
            )
        )
        if spec.secrets:
            _check_secrets(spec.secrets)
        now = utcnow()
        with self.changes.open(origin) as change:
            repo = _repo(change.conn, name)
            count = change.conn.execute(
                sa.select(sa.func.count()).where(_R.repository_id == repo.id)
            ).scalar_one()
            if count >= MAX_RULES:
                raise Forbidden(f"a repository has at most {MAX_RULES} build rules")
            res = change.conn.execute(
                sa.insert(t.build_rules).values(
                    repository_id=repo.id,
                    type=rule.type,
                    ref=rule.ref,
                    dockerfile_dir=rule.dockerfile_dir,
                    dockerfile_name=rule.dockerfile_name,
                    image_tags=json.dumps(list(rule.image_tags)),
                    build_args=json.dumps(dict(rule.build_args)),
                    secrets=self.box.seal_json(spec.secrets) if spec.secrets else None,
                    enabled=rule.enabled,
                    created_at=now,
                    updated_at=now,
                )
            )
            pk = res.inserted_primary_key
            assert pk is not None
            return self._with_secret_ids(self._rule_row(change.conn, repo, int(pk[0])))

    @staticmethod
    def _not_builtin(rule_id: int) -> None:
        if rule_id == BUILTIN_RULE_ID:
            raise Conflict("the built-in release rule cannot be changed or deleted")

    def update_rule(
        self, origin: Origin, name: RepositoryName, rule_id: int, spec: RuleInput
    ) -> Rule:
        self._not_builtin(rule_id)
        if spec.secrets:
            _check_secrets(spec.secrets)
        with self.changes.open(origin) as change:
            repo = _repo(change.conn, name)
            old = _rule(self._rule_row(change.conn, repo, rule_id))
            rule = self._validated(
                RuleSpec(
                    id=old.id,
                    type=spec.type if spec.type is not None else old.type,
                    ref=spec.ref if spec.ref is not None else old.ref,
                    dockerfile_dir=(
                        spec.dockerfile_dir
                        if spec.dockerfile_dir is not None
                        else old.dockerfile_dir
                    ),
                    dockerfile_name=(
                        spec.dockerfile_name
                        if spec.dockerfile_name is not None
                        else old.dockerfile_name
                    ),
                    image_tags=spec.image_tags if spec.image_tags is not None else old.image_tags,
                    build_args=spec.build_args if spec.build_args is not None else old.build_args,
                    enabled=spec.enabled if spec.enabled is not None else old.enabled,
                )
            )
            values: dict[str, Any] = {
                "type": rule.type,
                "ref": rule.ref,
                "dockerfile_dir": rule.dockerfile_dir,
                "dockerfile_name": rule.dockerfile_name,
                "image_tags": json.dumps(list(rule.image_tags)),
                "build_args": json.dumps(dict(rule.build_args)),
                "enabled": rule.enabled,
                "updated_at": utcnow(),
            }
            if spec.secrets is not None:
                values["secrets"] = self.box.seal_json(spec.secrets) if spec.secrets else None
            change.conn.execute(sa.update(t.build_rules).where(_R.id == rule_id).values(**values))
            return self._with_secret_ids(self._rule_row(change.conn, repo, rule_id))

    def delete_rule(self, origin: Origin, name: RepositoryName, rule_id: int) -> None:
        """Delete the rule; its builds stay in the history (without their rule)."""
        self._not_builtin(rule_id)
        with self.changes.open(origin) as change:
            row = self._rule_row(change.conn, _repo(change.conn, name), rule_id)
            change.conn.execute(sa.delete(t.build_rules).where(_R.id == row.id))

    # -- queueing builds -----------------------------------------------------------------

    def start_build(
        self, origin: Origin, name: RepositoryName, rule_id: int, ref: str | None
    ) -> Build:
        """ "Build Now": the head commit of the rule's ref (a regex rule needs ``ref``,
        a name it matches), resolved now, built as that exact commit."""
        with self.db.read() as conn:
            repo = _repo(conn, name)
            source = self._source_row(conn, repo)
        rule = self.rule(name, rule_id)
        spec = rule_spec(rule)
        if is_regex(rule.ref):
            if not ref:
                raise Invalid(
                    f"rule {rule.id} matches refs by the pattern {rule.ref!r}: name the "
                    f"{rule.type} to build in ref"
                )
        elif ref and ref != rule.ref:
            raise Invalid(f"rule {rule.id} builds the {rule.type} {rule.ref!r}, not {ref!r}")
        wanted = ref or rule.ref
        match = compile_ref(rule.ref)(wanted)
        if match is None:
            raise Invalid(f"{rule.type} {wanted!r} does not match the rule's pattern {rule.ref!r}")
        refs = self.ls_remote(source)
        target = full_ref(rule.type, wanted)
        sha = refs.get(target + "^{}") or refs.get(target)
        if sha is None:
            raise NotFound(f"the source has no {rule.type} {wanted!r}")
        with self.changes.open(origin) as change:
            repo = _repo(change.conn, name)
            source = self._source_row(change.conn, repo)
            build_id = self.queue_build(
                change,
                repo,
                source,
                spec,
                match,
                rule.type,
                sha,
                trigger="manual",
                by=origin.actor,
            )
        return self.get_build(name, build_id)

    def queue_build(
        self,
        change: Change,
        repo: Repo,
        source: Any,
        rule: RuleSpec,
        match: RefMatch,
        kind: str,
        sha: str,
        *,
        trigger: str,
        by: str = "",
        delivery_id: int | None = None,
    ) -> int:
        """Insert a build of ``sha`` and its job in ``change``'s transaction. A tag
        template that renders no valid tag makes a build that failed at once, saying
        which template."""
        now = utcnow()
        status, error, tags = PENDING, "", []
        try:
            tags = render_tags(rule.image_tags, match=match, kind=kind, commit=sha, build_time=now)
        except RuleError as exc:
            status, error = FAILED, str(exc)[:1024]
        builtin = rule.builtin
        spec = {
            "dockerfile_dir": rule.dockerfile_dir,
            "dockerfile_name": rule.dockerfile_name,
            "build_args": dict(rule.build_args),
        }
        res = change.conn.execute(
            sa.insert(t.builds).values(
                repository_id=repo.id,
                rule_id=None if builtin or not isinstance(rule.id, int) else rule.id,
                rule_ref=rule.ref,
                trigger=trigger,
                triggered_by=by[:200],
                hook_delivery_id=delivery_id,
                ref_type=kind,
                ref_name=match.name,
                commit_sha=sha,
                status=status,
                spec=json.dumps(spec),
                image_tags=json.dumps(list(dict.fromkeys(tags))),
                error=error,
                created_at=now,
                finished_at=now if status == FAILED else None,
            )
        )
        pk = res.inserted_primary_key
        assert pk is not None
        build_id = int(pk[0])
        if status == PENDING:
            enqueue(
                change.conn,
                build_job(source.build_pool),
                {"build_id": build_id},
                concurrency_key=f"builds:account:{repo.account_id}",
            )
        else:
            self.emit_completed(change, repo, build_id)
        return build_id

    def emit_completed(self, change: Change, repo: Repo, build_id: int) -> None:
        """The ``build_completed`` event of a build that just ended (in its change)."""
        row = _build(
            change.conn.execute(sa.select(t.builds).where(_B.id == build_id)).one(), str(repo.name)
        )
        tags = list(row.image_tags)
        change.emit(
            BUILD_COMPLETED,
            Subject(
                account_id=repo.account_id,
                namespace=repo.name.namespace,
                repository=repo.name.repository,
                tag=tags[0] if tags and row.status == "success" else "",
                digest=row.digest,
                repository_public=repo.is_public,
                repository_created_at=repo.created_at,
                detail={
                    "build": {
                        "build_id": row.id,
                        "status": row.status,
                        "image_tags": tags,
                        "digest": row.digest or None,
                        "duration_seconds": round(row.duration, 3) if row.duration else None,
                        "rule_id": row.rule_id,
                        "ref": {"type": row.ref_type, "name": row.ref_name},
                        "commit": row.commit_sha,
                        "error": row.error or None,
                    }
                },
            ),
        )

    # -- builds ----------------------------------------------------------------------

    def list_builds(
        self,
        name: RepositoryName,
        *,
        status: str | None = None,
        rule_id: int | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[Build]:
        if status is not None and status not in STATES:
            raise Invalid(f"status must be one of {', '.join(STATES)}")
        with self.db.read() as conn:
            repo = _repo(conn, name)
            q = sa.select(t.builds).where(_B.repository_id == repo.id)
            if status is not None:
                q = q.where(_B.status == status)
            if rule_id is not None:
                q = q.where(
                    _B.rule_id.is_(None) if rule_id == BUILTIN_RULE_ID else _B.rule_id == rule_id
                )
            if before is not None:
                q = q.where(_B.id < before)
            rows = conn.execute(q.order_by(_B.id.desc()).limit(limit)).all()
        return [_build(r, str(name)) for r in rows]

    def get_build(self, name: RepositoryName, build_id: int) -> Build:
        with self.db.read() as conn:
            return _build(self._build_row(conn, _repo(conn, name), build_id), str(name))

    @staticmethod
    def _build_row(conn: Connection, repo: Repo, build_id: int) -> Any:
        return _owned(conn, t.builds, repo, build_id, "build")

    def log(
        self, name: RepositoryName, build_id: int, *, offset: int = 0, limit: int = 1000
    ) -> tuple[list[LogLine], str]:
        """Lines after line number ``offset`` (at most ``limit``), and the build's
        status (a follower stops once it is final and no lines are left)."""
        with self.db.read() as conn:
            status = self._build_row(conn, _repo(conn, name), build_id).status
            return _lines(conn, build_id, offset, limit), status

    def log_since(self, build_id: int, offset: int, limit: int = 1000) -> tuple[list[LogLine], str]:
        """:meth:`log` without the repository check (a follower already made it)."""
        with self.db.read() as conn:
            # The status first: read as final, every line is written already.
            status = conn.execute(sa.select(_B.status).where(_B.id == build_id)).scalar()
            return _lines(conn, build_id, offset, limit), status or CANCELED

    def cancel(self, origin: Origin, name: RepositoryName, build_id: int) -> Build:
        """A pending build is canceled at once; a running one is asked to stop (its
        runner stops it within seconds and removes its work folder)."""
        with self.changes.open(origin) as change:
            repo = _repo(change.conn, name)
            row = self._build_row(change.conn, repo, build_id)
            if row.status in FINAL:
                raise Conflict(f"build {build_id} has ended ({row.status})")
            if row.status == PENDING:
                change.conn.execute(
                    sa.update(t.builds)
                    .where(_B.id == build_id)
                    .values(
                        status=CANCELED,
                        cancel_requested=True,
                        error="canceled before it started",
                        finished_at=utcnow(),
                    )
                )
                self.emit_completed(change, repo, build_id)
            else:
                change.conn.execute(
                    sa.update(t.builds).where(_B.id == build_id).values(cancel_requested=True)
                )
        return self.get_build(name, build_id)

    # -- hooks and polling -------------------------------------------------------------

    def source_by_hook(self, hook_id: str) -> tuple[Any, Repo] | None:
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.code_sources).where(_S.hook_id == hook_id)).first()
            if row is None:
                return None
            return row, repo_by_id(conn, row.repository_id)

    def _matching(self, conn: Connection, repo: Repo, kind: str, name: str) -> list[Any]:
        rows = conn.execute(
            sa.select(t.build_rules).where(_R.repository_id == repo.id).order_by(_R.id)
        ).all()
        specs = [rule_spec(_rule(r)) for r in rows]
        return list(matching_rules(specs, kind, name))

    def trigger(
        self,
        change: Change,
        repo: Repo,
        source: Any,
        kind: str,
        name: str,
        sha: str,
        *,
        trigger: str,
        delivery_id: int | None = None,
    ) -> list[int]:
        """Queue one build per enabled rule matching the ``kind`` ref ``name``, of
        ``sha``; the ids of the builds."""
        return [
            self.queue_build(
                change,
                repo,
                source,
                rule,
                match,
                kind,
                sha,
                trigger=trigger,
                by=trigger,
                delivery_id=delivery_id,
            )
            for rule, match in self._matching(change.conn, repo, kind, name)
        ]

    def record_delivery(
        self,
        conn: Connection,
        source_id: int,
        *,
        provider: str = "",
        delivery: str = "",
        kind: str,
        ref: str = "",
        commit: str = "",
        status: int,
        outcome: str,
    ) -> int:
        res = conn.execute(
            sa.insert(t.hook_deliveries).values(
                source_id=source_id,
                received_at=utcnow(),
                provider=provider[:16],
                delivery=delivery[:128],
                kind=kind,
                ref=ref[:255],
                commit_sha=commit[:64],
                status=status,
                outcome=outcome[:2000],
            )
        )
        pk = res.inserted_primary_key
        assert pk is not None
        return int(pk[0])

    @staticmethod
    def set_delivery_outcome(
        conn: Connection, delivery_id: int, outcome: str, builds: Sequence[int]
    ) -> None:
        conn.execute(
            sa.update(t.hook_deliveries)
            .where(_H.id == delivery_id)
            .values(outcome=outcome[:2000], builds=json.dumps(list(builds)))
        )

    def deliveries(
        self, name: RepositoryName, *, limit: int = 100, before: int | None = None
    ) -> list[HookDelivery]:
        with self.db.read() as conn:
            source = self._source_row(conn, _repo(conn, name))
            q = sa.select(t.hook_deliveries).where(_H.source_id == source.id)
            if before is not None:
                q = q.where(_H.id < before)
            rows = conn.execute(q.order_by(_H.id.desc()).limit(limit)).all()
        return [
            HookDelivery(
                id=int(r.id),
                received_at=as_utc(r.received_at),
                provider=r.provider,
                delivery=r.delivery,
                kind=r.kind,
                ref=r.ref,
                commit=r.commit_sha,
                status=int(r.status),
                outcome=r.outcome,
                builds=tuple(json.loads(r.builds)),
            )
            for r in rows
        ]

    def on_push(
        self,
        origin: Origin,
        source: Any,
        repo: Repo,
        *,
        provider: str,
        delivery: str,
        ref: str,
        commit: str,
        deleted: bool,
    ) -> HookOutcome:
        """A code host says ``ref`` now points at ``commit``: the delivery is recorded
        with the builds it queued (one per enabled matching rule), with its audit record,
        in one transaction."""
        parsed = ref_kind(ref)
        with self.changes.open(origin) as change:
            delivery_id = self.record_delivery(
                change.conn,
                source.id,
                provider=provider,
                delivery=delivery,
                kind="push",
                ref=ref,
                commit=commit,
                status=202,
                outcome="",
            )
            builds: list[int] = []
            if deleted:
                message = f"{ref} was deleted: nothing to build"
            elif parsed is None:
                message = f"{ref} is neither a branch nor a tag: nothing to build"
            elif not source.auto_build:
                message = "auto build is off for this source: nothing built"
            else:
                kind, name = parsed
                builds = self.trigger(
                    change,
                    repo,
                    source,
                    kind,
                    name,
                    commit,
                    trigger="push",
                    delivery_id=delivery_id,
                )
                message = (
                    f"queued build {', '.join(map(str, builds))}"
                    if builds
                    else f"no enabled build rule matches the {kind} {name!r}"
                )
            self.set_delivery_outcome(change.conn, delivery_id, message, builds)
        return HookOutcome(delivery_id, builds, message)

    def record_refused(
        self, source: Any, *, kind: str, status: int, outcome: str, provider: str = ""
    ) -> None:
        """A hook request that was refused (bad signature, bad payload) or only said
        hello (ping): listed among the deliveries, nothing queued."""
        with self.db.write() as conn:
            self.record_delivery(
                conn, source.id, provider=provider, kind=kind, status=status, outcome=outcome
            )

    def poll_due(self) -> int:
        """Poll every code source whose poll interval has passed; each poll is taken by
        one worker (a conditional update of ``polled_at``). Returns how many it polled."""
        now = utcnow()
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(_S.id, _S.poll_interval, _S.polled_at).where(
                    _S.poll_interval.is_not(None)
                )
            ).all()
        polled = 0
        for row in rows:
            cutoff = now - timedelta(seconds=int(row.poll_interval))
            if row.polled_at is not None and as_utc(row.polled_at) > cutoff:
                continue
            with self.db.write() as conn:
                taken = conn.execute(
                    sa.update(t.code_sources)
                    .where(
                        _S.id == row.id,
                        sa.or_(_S.polled_at.is_(None), _S.polled_at <= cutoff),
                    )
                    .values(polled_at=now)
                ).rowcount
            if taken:
                self._poll(int(row.id))
                polled += 1
        return polled

    def _poll(self, source_id: int) -> None:
        """Compare the source's refs with the last poll's; every branch or tag that
        moved (or appeared) builds with its matching rules. The first poll only looks."""
        with self.db.read() as conn:
            source = conn.execute(sa.select(t.code_sources).where(_S.id == source_id)).first()
        if source is None:
            return
        try:
            refs = _peeled(self.ls_remote(source))
        except SourceError as exc:
            log.warning("polling code source %s failed: %s", source_id, exc)
            return
        seen = json.loads(source.polled_refs) if source.polled_refs else None
        with self.changes.open(Origin(actor="poll")) as change:
            repo = repo_by_id(change.conn, source.repository_id)
            if seen is not None and source.auto_build:
                for moved in poll_events(seen, refs):
                    if not moved.deleted:
                        self.trigger(
                            change,
                            repo,
                            source,
                            moved.kind,
                            moved.name,
                            moved.commit,
                            trigger="poll",
                        )
            change.conn.execute(
                sa.update(t.code_sources)
                .where(_S.id == source_id)
                .values(polled_refs=json.dumps(refs))
            )


class HookOutcome:
    """What a push to a hook did: the builds it queued, said in one line."""

    def __init__(self, delivery_id: int, builds: list[int], message: str) -> None:
        self.delivery_id = delivery_id
        self.builds = builds
        self.message = message


def _peeled(refs: Mapping[str, str]) -> dict[str, str]:
    """Branch and tag → the commit it names (annotated tags peeled)."""
    return {
        ref: refs.get(ref + "^{}", sha)
        for ref, sha in refs.items()
        if not ref.endswith("^{}") and ref_kind(ref) is not None
    }
