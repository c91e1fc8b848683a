"""Namespaces, repositories and their tags.

A namespace is created explicitly (CLI or management API); a repository is created by
the first push into an existing namespace whose "automatically create repository"
setting is on, or explicitly. Both are counted against a per-account quota
(``accounts.namespace_quota``, ``accounts.repository_quota``) that the instance
administrator can raise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from dockyard.changes import Change, Changes
from dockyard.db import tables as t
from dockyard.db.engine import Database, as_utc, utcnow
from dockyard.db.raw import RawQuery, keyset_pages
from dockyard.db.upsert import upsert
from dockyard.errors import Conflict, Forbidden, Invalid, NotFound
from dockyard.events import model as events
from dockyard.events.outbox import Subject
from dockyard.iam.arn import namespace_arn, repository_arn
from dockyard.iam.authz import Context, Principal, ScopedDecisions
from dockyard.iam.permissions import forget_permissions
from dockyard.oci.reference import (
    COMPONENT_CHARS,
    NameError_,
    RepositoryName,
    check_component,
    check_tag,
)
from dockyard.origin import Origin

SUMMARY_MAX_CHARS = 100
"""A repository's summary, as in the cloud console."""
DETAIL_MAX_BYTES = 64 * 1024
"""A repository's detail (markdown), in UTF-8 bytes."""
_SCAN_BATCH = 500


class QuotaExceeded(Forbidden):
    """The account holds as many namespaces (or repositories) as its quota allows."""


@dataclass(frozen=True, slots=True)
class Namespace:
    id: int
    name: str
    account_id: int | None
    auto_create: bool
    default_public: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RepoRef:
    """What the registry needs to know about ``namespace/repository`` before acting."""

    name: RepositoryName
    namespace_id: int | None
    account_id: int | None
    auto_create: bool
    default_public: bool
    repository_id: int | None
    is_public: bool

    @property
    def exists(self) -> bool:
        return self.repository_id is not None


class RepositoryEntry(NamedTuple):
    """One line of the catalog: what deciding who may see a repository needs."""

    full_name: str
    id: int
    account_id: int | None
    is_public: bool


@dataclass(frozen=True, slots=True)
class Repository:
    id: int
    namespace: str
    name: str
    account_id: int | None
    is_public: bool
    summary: str
    detail: str
    created_at: datetime
    updated_at: datetime
    tag_count: int
    size: int
    """Bytes: the distinct blobs linked to the repository plus its manifests."""

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    digest: str
    media_type: str
    size: int
    """The manifest plus the blobs it references (config, layers); for an index, plus
    each child manifest with its blobs."""
    pushed_at: datetime


TagOrder = Literal["pushed", "name", "size"]
Direction = Literal["asc", "desc"]


@dataclass(frozen=True, slots=True)
class RepositoryFilter:
    """Which repositories a listing shows; None (or empty) leaves a filter out."""

    account_id: int | None = None
    account_name: str | None = None
    namespace: str | None = None
    contains: str | None = None
    """A substring of the repository's name (not of its namespace)."""
    public: bool | None = None

    def apply(self, q: sa.Select[Any]) -> sa.Select[Any]:
        if self.account_id is not None:
            q = q.where(t.namespaces.c.account_id == self.account_id)
        if self.account_name is not None:
            owner = sa.select(t.accounts.c.id).where(t.accounts.c.name == self.account_name)
            q = q.where(t.namespaces.c.account_id == owner.scalar_subquery())
        if self.namespace is not None:
            q = q.where(t.namespaces.c.name == self.namespace)
        if self.contains:
            # Names are lowercase; lowering the filter makes it match alike on every
            # database (LIKE ignores case on SQLite only).
            q = q.where(t.repositories.c.name.contains(self.contains.lower(), autoescape=True))
        if self.public is not None:
            q = q.where(t.repositories.c.is_public == self.public)
        return q


def repository_check(
    region: str,
    principal: Principal,
    wanted: tuple[str, ...],
    context: Context | None,
    *,
    unowned: int | str,
) -> Callable[[RepositoryEntry], bool]:
    """Whether ``principal`` may do any of ``wanted`` on a catalog entry's repository
    (``unowned``: the account its ARN names when its namespace has none). Decided once
    per namespace wherever the principal's policies treat the namespace's repositories
    alike (:class:`ScopedDecisions`), one by one elsewhere: the same answers as
    :func:`is_allowed` on each repository, at a fraction of the cost in a listing."""
    deciders = [
        ScopedDecisions(principal, action, context, chars=COMPONENT_CHARS) for action in wanted
    ]
    prefixes: dict[tuple[int | None, str], str] = {}

    def check(entry: RepositoryEntry) -> bool:
        namespace, _, repository = entry.full_name.partition("/")
        key = (entry.account_id, namespace)
        prefix = prefixes.get(key)
        if prefix is None:
            account = entry.account_id if entry.account_id is not None else unowned
            prefix = prefixes[key] = repository_arn(region, account, namespace, "")
        return any(d.is_allowed(prefix, repository, public=entry.is_public) for d in deciders)

    return check


def _namespace(row: sa.Row[tuple[object, ...]]) -> Namespace:
    m = row._mapping
    return Namespace(
        id=m["id"],
        name=m["name"],
        account_id=m["account_id"],
        auto_create=m["auto_create"],
        default_public=m["default_public"],
        created_at=as_utc(m["created_at"]),
    )


_FULL_NAME = (t.namespaces.c.name + "/" + t.repositories.c.name).label("full")


def _entries_select() -> sa.Select[Any]:
    return sa.select(
        _FULL_NAME, t.repositories.c.id, t.namespaces.c.account_id, t.repositories.c.is_public
    ).select_from(t.repositories.join(t.namespaces))


_ENTRIES = keyset_pages(_entries_select(), _FULL_NAME, "after")
"""The unfiltered catalog's query, by (after a name?, limited?)."""


_REPOSITORY_DETAILS = sa.select(
    t.repositories,
    t.namespaces.c.name.label("namespace"),
    t.namespaces.c.account_id,
    sa.select(sa.func.count())
    .where(t.tags.c.repository_id == t.repositories.c.id)
    .scalar_subquery()
    .label("tag_count"),
    sa.select(sa.func.coalesce(sa.func.sum(t.blobs.c.size), 0))
    .select_from(t.repository_blobs.join(t.blobs))
    .where(t.repository_blobs.c.repository_id == t.repositories.c.id)
    .scalar_subquery()
    .label("blob_bytes"),
    sa.select(sa.func.coalesce(sa.func.sum(t.manifests.c.size), 0))
    .where(t.manifests.c.repository_id == t.repositories.c.id)
    .scalar_subquery()
    .label("manifest_bytes"),
).select_from(t.repositories.join(t.namespaces))


def _repository(row: sa.Row[tuple[object, ...]]) -> Repository:
    m = row._mapping
    return Repository(
        id=m["id"],
        namespace=m["namespace"],
        name=m["name"],
        account_id=m["account_id"],
        is_public=bool(m["is_public"]),
        summary=m["summary"],
        detail=m["detail"],
        created_at=as_utc(m["created_at"]),
        updated_at=as_utc(m["updated_at"]),
        tag_count=int(m["tag_count"]),
        size=int(m["blob_bytes"]) + int(m["manifest_bytes"]),
    )


def _check_description(summary: str | None, detail: str | None) -> None:
    if summary is not None and len(summary) > SUMMARY_MAX_CHARS:
        raise Invalid(
            f"the summary has {len(summary)} characters; at most {SUMMARY_MAX_CHARS} are allowed"
        )
    if detail is not None and len(detail.encode()) > DETAIL_MAX_BYTES:
        raise Invalid(
            f"the detail has {len(detail.encode())} bytes (UTF-8); at most "
            f"{DETAIL_MAX_BYTES} (64 KiB) are allowed"
        )


def _check_tag(tag: str) -> None:
    try:
        check_tag(tag)
    except NameError_ as exc:
        raise Invalid(str(exc)) from exc


_TOUCH_REPOSITORY = (
    sa.update(t.repositories)
    .where(t.repositories.c.id == sa.bindparam("repo"))
    .values(updated_at=sa.bindparam("at"))
)


def touch_repository(conn: Connection, repository_id: int, at: datetime | None = None) -> None:
    """Mark the repository as changed ``at`` (default: now), its ``updated_at`` (a
    statement built once: every push runs it)."""
    conn.execute(_TOUCH_REPOSITORY, {"repo": repository_id, "at": at or utcnow()})


# Built once: on the registry's hot path, building and keying a statement per request
# costs more than running it.
_RESOLVE = RawQuery(
    sa.select(
        t.namespaces.c.id.label("ns_id"),
        t.namespaces.c.account_id,
        t.namespaces.c.auto_create,
        t.namespaces.c.default_public,
        t.repositories.c.id.label("repo_id"),
        t.repositories.c.is_public,
    )
    .select_from(
        t.namespaces.outerjoin(
            t.repositories,
            sa.and_(
                t.repositories.c.namespace_id == t.namespaces.c.id,
                t.repositories.c.name == sa.bindparam("repository"),
            ),
        )
    )
    .where(t.namespaces.c.name == sa.bindparam("namespace"))
)
"""Which repository a name is: every registry request asks (its columns are integers and
booleans, which the driver gives as they are)."""


class CatalogService:
    """Every write takes the :class:`Origin` of the change first: the change, its audit
    record, its events and its clean-up (permissions) commit in one transaction."""

    def __init__(self, db: Database, changes: Changes, region: str = "local") -> None:
        self.db = db
        self.changes = changes
        self.region = region

    # -- namespaces ------------------------------------------------------------------

    def create_namespace(
        self,
        origin: Origin,
        name: str,
        *,
        account_id: int | None = None,
        auto_create: bool = True,
        default_public: bool = False,
        enforce_quota: bool = True,
    ) -> Namespace:
        """Create a namespace for ``account_id``, within the account's namespace quota
        unless ``enforce_quota`` is off (the instance administrator is not bound by it)."""
        # The length first: one message for a name too short or too long, whatever else.
        if len(name) < 2 or len(name) > 30:
            raise Invalid("a namespace name has 2 to 30 characters")
        try:
            check_component(name, "namespace")
        except NameError_ as exc:
            raise Invalid(str(exc)) from exc
        try:
            with self.changes.open(origin) as change:
                conn = change.conn
                if account_id is not None and enforce_quota:
                    self._check_namespace_quota(conn, account_id)
                conn.execute(
                    sa.insert(t.namespaces).values(
                        name=name,
                        account_id=account_id,
                        auto_create=auto_create,
                        default_public=default_public,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"namespace {name!r} already exists") from exc
        return self.get_namespace(name)

    @staticmethod
    def _check_namespace_quota(conn: Connection, account_id: int) -> None:
        used = sa.select(sa.func.count()).where(t.namespaces.c.account_id == account_id)
        _check_quota(conn, account_id, t.accounts.c.namespace_quota, used, "namespaces")

    def namespace_account(self, name: str) -> int | None:
        """The id of the account that owns namespace ``name`` (None when it is missing)."""
        with self.db.read() as conn:
            owner = conn.execute(
                sa.select(t.namespaces.c.account_id).where(t.namespaces.c.name == name)
            ).scalar()
        return None if owner is None else int(owner)

    def get_namespace(self, name: str) -> Namespace:
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.namespaces).where(t.namespaces.c.name == name)).first()
        if row is None:
            raise NotFound(f"namespace {name!r} does not exist")
        return _namespace(row)

    def list_namespaces(
        self,
        *,
        limit: int = 100,
        after: str | None = None,
        account_id: int | None = None,
        account_name: str | None = None,
    ) -> list[Namespace]:
        """Namespaces in name order after ``after``; only ``account_id``'s when given,
        only those of the account named ``account_name`` when given (both: those of
        the account when it is both, none otherwise)."""
        q = sa.select(t.namespaces).order_by(t.namespaces.c.name).limit(limit)
        if after:
            q = q.where(t.namespaces.c.name > after)
        q = RepositoryFilter(account_id=account_id, account_name=account_name).apply(q)
        with self.db.read() as conn:
            return [_namespace(r) for r in conn.execute(q)]

    def account_names(self, ids: set[int]) -> dict[int, str]:
        """The names of the accounts with these ids (what listings show as the owner),
        in one query."""
        if not ids:
            return {}
        q = sa.select(t.accounts.c.id, t.accounts.c.name).where(t.accounts.c.id.in_(sorted(ids)))
        with self.db.read() as conn:
            return {int(row.id): str(row.name) for row in conn.execute(q)}

    def update_namespace(
        self,
        origin: Origin,
        name: str,
        *,
        auto_create: bool | None = None,
        default_public: bool | None = None,
    ) -> Namespace:
        """Change the settings given (None leaves one as it is)."""
        values = {"auto_create": auto_create, "default_public": default_public}
        changes = {k: v for k, v in values.items() if v is not None}
        if changes:
            with self.changes.open(origin) as change:
                res = change.conn.execute(
                    sa.update(t.namespaces).where(t.namespaces.c.name == name).values(**changes)
                )
                if res.rowcount == 0:
                    raise NotFound(f"namespace {name!r} does not exist")
        return self.get_namespace(name)

    def delete_namespace(self, origin: Origin, name: str) -> None:
        """Delete an empty namespace with its permissions and webhooks; one that still
        holds repositories is refused (deleting them is a decision of its own)."""
        with self.changes.open(origin) as change:
            conn = change.conn
            row = conn.execute(
                sa.select(t.namespaces.c.id, t.namespaces.c.account_id).where(
                    t.namespaces.c.name == name
                )
            ).first()
            if row is None:
                raise NotFound(f"namespace {name!r} does not exist")
            held = conn.execute(
                sa.select(sa.func.count()).where(t.repositories.c.namespace_id == row.id)
            ).scalar_one()
            if held:
                noun = "repository" if held == 1 else "repositories"
                raise Conflict(
                    f"namespace {name!r} still holds {held} {noun}; delete them first "
                    "(only an empty namespace can be deleted)"
                )
            conn.execute(sa.delete(t.namespaces).where(t.namespaces.c.id == row.id))
            if row.account_id is not None:
                arn = namespace_arn(self.region, row.account_id, name)
                forget_permissions(conn, row.account_id, arn)

    # -- repositories ----------------------------------------------------------------

    def owner_of(self, namespace: str, repository: str | None) -> tuple[int | None, bool]:
        """The account owning ``namespace`` (None when it does not exist) and whether
        ``namespace/repository`` is public (False without a repository): what an
        authorization check needs to know of a resource."""
        if repository is None:
            return self.namespace_account(namespace), False
        ref = self.resolve(RepositoryName(namespace, repository))
        return ref.account_id, ref.is_public

    def resolve(self, name: RepositoryName, conn: Connection | None = None) -> RepoRef:
        params = {"namespace": name.namespace, "repository": name.repository}
        row: Any
        if conn is None:
            row = self.db.fetch_one(_RESOLVE, **params)
        else:
            rows = _RESOLVE.rows(conn, **params)
            row = rows[0] if rows else None
        if row is None:
            return RepoRef(name, None, None, False, False, None, False)
        ns_id, account_id, auto_create, default_public, repo_id, is_public = row
        return RepoRef(
            name=name,
            namespace_id=ns_id,
            account_id=account_id,
            auto_create=bool(auto_create),
            default_public=bool(default_public),
            repository_id=repo_id,
            is_public=bool(is_public),
        )

    def ensure_repository(self, change: Change, ref: RepoRef) -> int:
        """The repository's id, creating it inside ``change``'s transaction (with its
        ``repository_create`` event)."""
        conn = change.conn
        if ref.repository_id is not None:
            return ref.repository_id
        current = self.resolve(ref.name, conn)
        if current.repository_id is not None:
            return current.repository_id
        if current.namespace_id is None:
            raise NotFound(
                f"namespace {ref.name.namespace!r} does not exist; create it first "
                f"(dockyard namespace create {ref.name.namespace})"
            )
        if not current.auto_create:
            raise NotFound(
                f"repository {ref.name} does not exist and namespace "
                f"{ref.name.namespace!r} does not create repositories on push; create it "
                "in the console or with POST /api/v1/repositories"
            )
        if current.account_id is not None:
            # The push does not say who pushes (a token names only its subject), so the
            # exemption goes by account: the administrator's own is not bound by quotas.
            self._check_repository_quota(conn, current.account_id, exempt_admin=True)
        now = utcnow()
        # On PostgreSQL write transactions run side by side: another push may have
        # inserted this repository and not committed yet. ON CONFLICT DO NOTHING waits
        # for it and then yields to its row instead of failing on the unique constraint.
        upsert(
            conn,
            t.repositories,
            {
                "namespace_id": current.namespace_id,
                "name": ref.name.repository,
                "is_public": current.default_public,
                "summary": "",
                "created_at": now,
                "updated_at": now,
            },
            keys=["namespace_id", "name"],
        )
        row = conn.execute(
            sa.select(t.repositories.c.id, t.repositories.c.created_at).where(
                t.repositories.c.namespace_id == current.namespace_id,
                t.repositories.c.name == ref.name.repository,
            )
        ).one()
        if as_utc(row.created_at) == now:  # this push created it (not a concurrent one)
            change.emit(
                events.REPOSITORY_CREATE,
                _repository_subject(ref.name, current.account_id, current.default_public, now),
            )
        return int(row.id)

    @staticmethod
    def _check_repository_quota(
        conn: Connection, account_id: int, *, exempt_admin: bool = False
    ) -> None:
        used = (
            sa.select(sa.func.count())
            .select_from(t.repositories.join(t.namespaces))
            .where(t.namespaces.c.account_id == account_id)
        )
        _check_quota(
            conn,
            account_id,
            t.accounts.c.repository_quota,
            used,
            "repositories",
            exempt_admin=exempt_admin,
        )

    def create_repository(
        self,
        origin: Origin,
        name: RepositoryName,
        *,
        public: bool | None = None,
        summary: str = "",
        detail: str = "",
        enforce_quota: bool = True,
    ) -> Repository:
        """Create ``name`` in its (existing) namespace, public or private as asked or
        else as the namespace's default type, within the owning account's repository
        quota unless ``enforce_quota`` is off (the instance administrator)."""
        _check_description(summary, detail)
        try:
            with self.changes.open(origin) as change:
                conn = change.conn
                ref = self.resolve(name, conn)
                if ref.namespace_id is None:
                    raise NotFound(
                        f"namespace {name.namespace!r} does not exist; create it first "
                        "(POST /api/v1/namespaces or dockyard namespace create "
                        f"{name.namespace})"
                    )
                if ref.exists:
                    raise Conflict(f"repository {name} already exists")
                if enforce_quota and ref.account_id is not None:
                    self._check_repository_quota(conn, ref.account_id)
                now = utcnow()
                is_public = ref.default_public if public is None else public
                conn.execute(
                    sa.insert(t.repositories).values(
                        namespace_id=ref.namespace_id,
                        name=name.repository,
                        is_public=is_public,
                        summary=summary,
                        detail=detail,
                        created_at=now,
                        updated_at=now,
                    )
                )
                change.emit(
                    events.REPOSITORY_CREATE,
                    _repository_subject(name, ref.account_id, is_public, now),
                )
        except IntegrityError as exc:
            raise Conflict(f"repository {name} already exists") from exc
        return self.get_repository(name)

    def _repository_id(self, conn: Connection, name: RepositoryName) -> int:
        ref = self.resolve(name, conn)
        if ref.repository_id is not None:
            return ref.repository_id
        if ref.namespace_id is None:
            raise NotFound(f"namespace {name.namespace!r} does not exist")
        raise NotFound(f"repository {name} does not exist")

    def get_repository(self, name: RepositoryName) -> Repository:
        with self.db.read() as conn:
            repository_id = self._repository_id(conn, name)
            row = conn.execute(
                _REPOSITORY_DETAILS.where(t.repositories.c.id == repository_id)
            ).one()
        return _repository(row)

    def update_repository(
        self,
        origin: Origin,
        name: RepositoryName,
        *,
        public: bool | None = None,
        summary: str | None = None,
        detail: str | None = None,
    ) -> Repository:
        """Change what is given (None leaves it as it is); ``updated_at`` becomes now."""
        _check_description(summary, detail)
        values = {"is_public": public, "summary": summary, "detail": detail}
        changes = {k: v for k, v in values.items() if v is not None}
        with self.changes.open(origin) as change:
            repository_id = self._repository_id(change.conn, name)
            change.conn.execute(
                sa.update(t.repositories)
                .where(t.repositories.c.id == repository_id)
                .values(**changes, updated_at=utcnow())
            )
        return self.get_repository(name)

    def delete_repository(self, origin: Origin, name: RepositoryName) -> None:
        """Delete the repository with its tags, manifests, permissions and webhooks;
        the blobs stay for ``dockyard gc`` to collect once nothing references them."""
        with self.changes.open(origin) as change:
            conn = change.conn
            ref = self.resolve(name, conn)
            if ref.repository_id is None:
                self._repository_id(conn, name)  # raises the right NotFound
                return
            created = conn.execute(
                sa.select(t.repositories.c.created_at).where(
                    t.repositories.c.id == ref.repository_id
                )
            ).scalar_one()
            conn.execute(sa.delete(t.repositories).where(t.repositories.c.id == ref.repository_id))
            if ref.account_id is not None:
                arn = repository_arn(self.region, ref.account_id, name.namespace, name.repository)
                forget_permissions(conn, ref.account_id, arn)
            change.emit(
                events.REPOSITORY_DELETE,
                _repository_subject(name, ref.account_id, ref.is_public, as_utc(created)),
            )

    def list_repositories(
        self,
        *,
        limit: int | None = 100,
        after: str | None = None,
        filters: RepositoryFilter | None = None,
    ) -> list[RepositoryEntry]:
        """Repositories in ``namespace/name`` order after ``after``, narrowed by
        ``filters``; up to ``limit`` of them (None: all)."""
        if filters is None:
            # ``/v2/_catalog``'s walk: the whole catalog, rows straight from the driver.
            query = _ENTRIES[bool(after), limit is not None]
            with self.db.read() as conn:
                rows = query.rows(conn, after=after, limit=limit)
            return [RepositoryEntry(r[0], r[1], r[2], bool(r[3])) for r in rows]
        q = _entries_select().order_by(_FULL_NAME)
        if limit is not None:
            q = q.limit(limit)
        if after:
            q = q.where(after < _FULL_NAME)
        q = filters.apply(q)
        with self.db.read() as conn:
            return [RepositoryEntry(r[0], r[1], r[2], bool(r[3])) for r in conn.execute(q)]

    def find_repositories(
        self,
        keep: Callable[[RepositoryEntry], bool] | None = None,
        *,
        limit: int = 100,
        after: str | None = None,
        filters: RepositoryFilter | None = None,
    ) -> list[Repository]:
        """Up to ``limit`` repositories, as :meth:`list_repositories` orders and filters
        them, that ``keep`` accepts (a permission check, say): the catalog is read in
        batches until the page is full, and the details (tag count, size) are computed
        for the chosen ones only."""
        chosen = self._choose(keep, limit, after, filters)
        if not chosen:
            return []
        with self.db.read() as conn:
            rows = conn.execute(
                _REPOSITORY_DETAILS.where(t.repositories.c.id.in_([e.id for e in chosen]))
            ).all()
        by_id = {row.id: _repository(row) for row in rows}
        # A repository deleted between the two reads is left out.
        return [by_id[e.id] for e in chosen if e.id in by_id]

    def repository_names(
        self,
        keep: Callable[[RepositoryEntry], bool],
        *,
        limit: int | None,
        after: str | None = None,
    ) -> tuple[list[str], bool]:
        """The full names of up to ``limit`` (None: all) repositories after ``after``
        that ``keep`` accepts, in ``namespace/name`` order, and whether more follow:
        ``/v2/_catalog``'s page."""
        chosen = self._choose(keep, None if limit is None else limit + 1, after)
        more = limit is not None and len(chosen) > limit
        return [e.full_name for e in chosen[:limit]], more

    def _choose(
        self,
        keep: Callable[[RepositoryEntry], bool] | None,
        limit: int | None,
        after: str | None,
        filters: RepositoryFilter | None = None,
    ) -> list[RepositoryEntry]:
        """Up to ``limit`` (None: all) catalog entries after ``after`` that ``keep``
        accepts, read in batches until that many are found. Without a limit the catalog
        is read in one query: the caller lists all it may see anyway, and every batch
        costs the database a sort of the whole catalog (full names join two tables)."""
        chosen: list[RepositoryEntry] = []
        cursor = after
        batch_size = limit
        if limit is not None and keep is not None:
            batch_size = max(limit, _SCAN_BATCH)
        while limit is None or len(chosen) < limit:
            batch = self.list_repositories(limit=batch_size, after=cursor, filters=filters)
            wanted = batch if keep is None else [e for e in batch if keep(e)]
            chosen.extend(wanted if limit is None else wanted[: limit - len(chosen)])
            if batch_size is None or len(batch) < batch_size:
                break
            cursor = batch[-1].full_name
        return chosen

    # -- tags ------------------------------------------------------------------------

    def list_tags(
        self,
        name: RepositoryName,
        *,
        limit: int = 100,
        after: str | None = None,
        contains: str | None = None,
        order: TagOrder = "pushed",
        direction: Direction | None = None,
    ) -> list[Tag]:
        """Tags of ``name`` in ``order`` (by default the latest pushed first, by name
        A to Z, or the largest first; ``direction`` turns it; ties by name), after the
        tag named ``after`` (the last of the previous page), only those whose name
        contains ``contains`` when given. Every order pages in the database, so a
        repository of thousands of tags is as quick to page as one of ten."""
        tags = t.tags.c
        key = {"pushed": tags.updated_at, "name": tags.name, "size": _TREE_SIZE}[order]
        descending = (direction or _DIRECTIONS[order]) == "desc"
        q = _TAGS.limit(limit)
        if contains:
            q = q.where(tags.name.contains(contains, autoescape=True))
        with self.db.read() as conn:
            repository_id = self._repository_id(conn, name)
            q = q.where(tags.repository_id == repository_id)
            if order == "name":
                q = q.order_by(tags.name.desc() if descending else tags.name)
                if after:
                    q = q.where(tags.name < after if descending else tags.name > after)
            else:
                q = q.order_by(key.desc() if descending else key, tags.name)
                if after:
                    cut = conn.execute(
                        sa.select(key)
                        .select_from(_TAGGED)
                        .where(tags.repository_id == repository_id, tags.name == after)
                    ).scalar()
                    if cut is None:
                        raise Invalid(
                            f"after names tag {after[:128]!r}, which is not in {name} "
                            "(any more); list again from the start"
                        )
                    q = q.where(
                        sa.or_(
                            key < cut if descending else key > cut,
                            sa.and_(key == cut, tags.name > after),
                        )
                    )
            rows = conn.execute(q).all()
        return [_tag(r) for r in rows]

    def get_tag(self, name: RepositoryName, tag: str) -> Tag:
        _check_tag(tag)
        with self.db.read() as conn:
            repository_id = self._repository_id(conn, name)
            row = conn.execute(
                _TAGS.where(t.tags.c.repository_id == repository_id, t.tags.c.name == tag)
            ).first()
        if row is None:
            raise NotFound(f"tag {tag!r} does not exist in {name}")
        return _tag(row)

    def delete_tag(self, origin: Origin, name: RepositoryName, tag: str) -> None:
        """Remove the tag; the manifest stays, reachable by digest (as when a registry
        client deletes a tag)."""
        _check_tag(tag)
        with self.changes.open(origin) as change:
            ref = self.resolve(name, change.conn)
            repository_id = self._repository_id(change.conn, name)
            if not remove_tag(change, ref, repository_id, tag):
                raise NotFound(f"tag {tag!r} does not exist in {name}")


def remove_tag(change: Change, ref: RepoRef, repository_id: int, tag: str) -> bool:
    """Delete ``tag`` with its ``tag_delete`` event; False when there is no such tag.
    The one place a tag is deleted, for the registry and the management API alike."""
    conn = change.conn
    row = conn.execute(
        sa.select(t.manifests.c.digest, t.manifests.c.media_type, t.manifests.c.size)
        .select_from(t.tags.join(t.manifests, t.tags.c.manifest_id == t.manifests.c.id))
        .where(t.tags.c.repository_id == repository_id, t.tags.c.name == tag)
    ).first()
    if row is None:
        return False
    conn.execute(
        sa.delete(t.tags).where(t.tags.c.repository_id == repository_id, t.tags.c.name == tag)
    )
    touch_repository(conn, repository_id)
    change.emit(
        events.TAG_DELETE,
        image_subject(
            conn,
            ref,
            repository_id,
            tag=tag,
            digest=row.digest,
            media_type=row.media_type,
            size=int(row.size),
        ),
    )
    return True


def _repository_subject(
    name: RepositoryName, account_id: int | None, public: bool, created_at: datetime
) -> Subject:
    return Subject(
        account_id=account_id,
        namespace=name.namespace,
        repository=name.repository,
        repository_public=public,
        repository_created_at=created_at,
    )


_REPOSITORY_FACTS = sa.select(t.repositories.c.is_public, t.repositories.c.created_at).where(
    t.repositories.c.id == sa.bindparam("repo")
)


def image_subject(
    conn: Connection,
    ref: RepoRef,
    repository_id: int,
    *,
    tag: str,
    digest: str,
    media_type: str,
    size: int,
) -> Subject:
    """The subject of an image event in ``ref``: the repository as it is now (its
    visibility and creation time, as webhook payloads tell them) and the manifest."""
    row = conn.execute(_REPOSITORY_FACTS, {"repo": repository_id}).one()
    return Subject(
        account_id=ref.account_id,
        namespace=ref.name.namespace,
        repository=ref.name.repository,
        tag=tag,
        digest=digest,
        media_type=media_type,
        size=size,
        repository_public=bool(row.is_public),
        repository_created_at=as_utc(row.created_at),
    )


def _blob_bytes(manifest_id: sa.ColumnElement[int]) -> sa.ScalarSelect[Any]:
    """The bytes of the distinct blobs (config, layers) the manifest ``manifest_id``
    references, as a subquery correlated to the query it sits in."""
    refs = t.manifest_references.alias("blob_refs")
    return (
        sa.select(sa.func.coalesce(sa.func.sum(t.blobs.c.size), 0))
        .select_from(refs.join(t.blobs, t.blobs.c.digest == refs.c.digest))
        .where(refs.c.manifest_id == manifest_id, refs.c.kind == "blob")
        .scalar_subquery()
    )


def _tree_size() -> sa.ColumnElement[Any]:
    """A manifest's size plus its blobs', plus each child manifest's (an index's entries)
    with the child's blobs: what a pull of every platform fetches. A column, so that
    tags sort and page by it in the database."""
    manifests = t.manifests.c
    child = t.manifests.alias("child")
    refs = t.manifest_references.alias("child_refs")
    children = (
        sa.select(sa.func.coalesce(sa.func.sum(child.c.size + _blob_bytes(child.c.id)), 0))
        .select_from(
            refs.join(
                child,
                sa.and_(
                    child.c.repository_id == manifests.repository_id,
                    child.c.digest == refs.c.digest,
                ),
            )
        )
        .where(refs.c.manifest_id == manifests.id, refs.c.kind == "manifest")
        .scalar_subquery()
    )
    return (manifests.size + _blob_bytes(manifests.id) + children).label("tree_size")


_TREE_SIZE = _tree_size()
_TAGGED = t.tags.join(t.manifests, t.tags.c.manifest_id == t.manifests.c.id)
_TAGS = sa.select(
    t.tags.c.name,
    t.tags.c.updated_at,
    t.manifests.c.digest,
    t.manifests.c.media_type,
    _TREE_SIZE,
).select_from(_TAGGED)
_DIRECTIONS: dict[str, Direction] = {"pushed": "desc", "name": "asc", "size": "desc"}
"""Each order's natural direction: the latest pushed, A to Z, the largest first."""


def _tag(row: Any) -> Tag:
    return Tag(row.name, row.digest, row.media_type, int(row.tree_size), as_utc(row.updated_at))


def _check_quota(
    conn: Connection,
    account_id: int,
    column: sa.Column[int],
    used_query: sa.Select[Any],
    noun: str,
    *,
    exempt_admin: bool = False,
) -> None:
    """Refuse one more of ``noun`` when ``used_query`` counts as many as the account's
    quota ``column`` allows (the instance administrator's account is exempt when asked)."""
    administrator = (
        sa.exists()
        .where(t.users.c.account_id == t.accounts.c.id, t.users.c.is_admin.is_(True))
        .label("administrator")
    )
    row = conn.execute(
        sa.select(t.accounts.c.name, column, administrator).where(t.accounts.c.id == account_id)
    ).first()
    if row is None or (exempt_admin and row.administrator):
        return
    account, quota = row[0], row[1]
    used = conn.execute(used_query).scalar_one()
    if used >= quota:
        raise QuotaExceeded(
            f"account {account!r} has {used} of its {quota} {noun} (its quota); delete one, "
            "or ask the instance administrator to raise the quota with "
            f'PATCH /api/v1/accounts/{account} {{"{column.name}": N}}'
        )


def parse_repository_name(text: str) -> RepositoryName:
    try:
        return RepositoryName.parse(text)
    except NameError_ as exc:
        raise Invalid(str(exc)) from exc
