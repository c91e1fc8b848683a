"""Namespaces and repositories.

A namespace is created explicitly (CLI or management API); a repository is created by
the first push into an existing namespace whose "automatically create repository"
setting is on, or explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from dockyard.db import tables as t
from dockyard.db.engine import Database, as_utc, utcnow
from dockyard.db.upsert import upsert
from dockyard.errors import Conflict, Forbidden, Invalid, NotFound
from dockyard.oci.reference import NameError_, RepositoryName, check_component


class QuotaExceeded(Forbidden):
    """The account holds as many namespaces as its quota allows."""


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


# Built once: on the registry's hot path, building and keying a statement per request
# costs more than running it.
_RESOLVE = (
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


class CatalogService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- namespaces ------------------------------------------------------------------

    def create_namespace(
        self,
        name: str,
        *,
        account_id: int | None = None,
        auto_create: bool = True,
        default_public: bool = False,
        enforce_quota: bool = True,
    ) -> Namespace:
        """Create a namespace for ``account_id``, within the account's namespace quota
        unless ``enforce_quota`` is off (the instance administrator is not bound by it)."""
        try:
            check_component(name, "namespace")
        except NameError_ as exc:
            raise Invalid(str(exc)) from exc
        if len(name) < 2 or len(name) > 30:
            raise Invalid("a namespace name has 2 to 30 characters")
        try:
            with self.db.write() as conn:
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
        quota = conn.execute(
            sa.select(t.accounts.c.namespace_quota).where(t.accounts.c.id == account_id)
        ).scalar()
        used = conn.execute(
            sa.select(sa.func.count()).where(t.namespaces.c.account_id == account_id)
        ).scalar_one()
        if quota is not None and used >= quota:
            raise QuotaExceeded(
                f"the account has {used} of its {quota} namespaces; delete one, or ask the "
                "instance administrator to raise the quota"
            )

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
        self, *, limit: int = 100, after: str | None = None, account_id: int | None = None
    ) -> list[Namespace]:
        """Namespaces in name order after ``after``; only ``account_id``'s when given."""
        q = sa.select(t.namespaces).order_by(t.namespaces.c.name).limit(limit)
        if after:
            q = q.where(t.namespaces.c.name > after)
        if account_id is not None:
            q = q.where(t.namespaces.c.account_id == account_id)
        with self.db.read() as conn:
            return [_namespace(r) for r in conn.execute(q)]

    def delete_namespace(self, name: str) -> None:
        with self.db.write() as conn:
            res = conn.execute(sa.delete(t.namespaces).where(t.namespaces.c.name == name))
        if res.rowcount == 0:
            raise NotFound(f"namespace {name!r} does not exist")

    # -- repositories ----------------------------------------------------------------

    def resolve(self, name: RepositoryName, conn: Connection | None = None) -> RepoRef:
        params = {"namespace": name.namespace, "repository": name.repository}
        if conn is None:
            with self.db.read() as c:
                row = c.execute(_RESOLVE, params).first()
        else:
            row = conn.execute(_RESOLVE, params).first()
        if row is None:
            return RepoRef(name, None, None, False, False, None, False)
        return RepoRef(
            name=name,
            namespace_id=row.ns_id,
            account_id=row.account_id,
            auto_create=row.auto_create,
            default_public=row.default_public,
            repository_id=row.repo_id,
            is_public=bool(row.is_public),
        )

    def ensure_repository(self, conn: Connection, ref: RepoRef) -> int:
        """The repository's id, creating it inside ``conn``'s write transaction."""
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
        repository_id = conn.execute(
            sa.select(t.repositories.c.id).where(
                t.repositories.c.namespace_id == current.namespace_id,
                t.repositories.c.name == ref.name.repository,
            )
        ).scalar_one()
        return int(repository_id)

    def list_repositories(
        self, *, limit: int = 100, after: str | None = None
    ) -> list[tuple[str, int, int | None, bool]]:
        """``(namespace/name, repository id, account id, is_public)`` in name order."""
        full = (t.namespaces.c.name + "/" + t.repositories.c.name).label("full")
        q = (
            sa.select(
                full, t.repositories.c.id, t.namespaces.c.account_id, t.repositories.c.is_public
            )
            .select_from(t.repositories.join(t.namespaces))
            .order_by(full)
            .limit(limit)
        )
        if after:
            q = q.where(full > after)
        with self.db.read() as conn:
            return [(r[0], r[1], r[2], bool(r[3])) for r in conn.execute(q)]


def parse_repository_name(text: str) -> RepositoryName:
    try:
        return RepositoryName.parse(text)
    except NameError_ as exc:
        raise Invalid(str(exc)) from exc
