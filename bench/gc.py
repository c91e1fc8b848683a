"""Garbage collection benchmark: ``dockyard gc`` over many untagged manifests.

    .venv/bin/python bench/gc.py [--counts 1000,10000,100000] [--database-url URL]

For each count N, a fresh database (SQLite in a temporary directory unless
``--database-url`` names an empty PostgreSQL one, which is then reused: its tables are
emptied between counts) is filled directly with one repository holding N untagged
manifests, all older than the grace period: nine in ten plain image manifests, one in
ten an untagged index over the manifest before it, and one in twenty a referrer whose
subject is an untagged manifest; plus 100 tagged images that must survive. Every image
references one shared layer blob, so that the blob phase stays small and the figure is
the manifests' cost. Then ``collect_garbage`` (grace 0) runs in this process, timed.

Prints a markdown table: N, seconds, manifests removed per second, and the manifests
left (the tagged ones). Exit status 1 when the survivors are not exactly the tagged
images.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "src"))

from dockyard.db import tables as t  # noqa: E402
from dockyard.db.engine import Database, utcnow  # noqa: E402
from dockyard.registry.maintenance import collect_garbage  # noqa: E402
from dockyard.storage.fs import FilesystemBlobStore  # noqa: E402

TAGGED = 100
LAYER = "sha256:" + "ab" * 32


def _digest(i: int) -> str:
    return "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()


def populate(db: Database, untagged: int) -> None:
    old = utcnow() - timedelta(days=30)
    with db.write() as conn:
        ns = conn.execute(
            sa.insert(t.namespaces).values(name="bench", created_at=old)
        ).inserted_primary_key
        assert ns is not None
        repo = conn.execute(
            sa.insert(t.repositories).values(
                namespace_id=ns[0], name="app", created_at=old, updated_at=old
            )
        ).inserted_primary_key
        assert repo is not None
        conn.execute(
            sa.insert(t.blobs).values(digest=LAYER, size=1, created_at=old, touched_at=old)
        )
        manifests = []
        references = []
        tags = []
        for i in range(untagged + TAGGED):
            index = i < untagged and i % 10 == 9
            subject = _digest(i - 3) if i < untagged and i % 20 == 4 else None
            manifests.append(
                {
                    "id": i + 1,
                    "repository_id": repo[0],
                    "digest": _digest(i),
                    "media_type": "application/vnd.oci.image.index.v1+json"
                    if index
                    else "application/vnd.oci.image.manifest.v1+json",
                    "size": 2,
                    "content": b"{}",
                    "subject_digest": subject,
                    "created_at": old,
                    "touched_at": old,
                }
            )
            if index:
                references.append(
                    {"manifest_id": i + 1, "kind": "manifest", "digest": _digest(i - 1)}
                )
            else:
                references.append({"manifest_id": i + 1, "kind": "blob", "digest": LAYER})
            if i >= untagged:
                tags.append(
                    {
                        "repository_id": repo[0],
                        "name": f"v{i}",
                        "manifest_id": i + 1,
                        "updated_at": old,
                    }
                )
        for start in range(0, len(manifests), 5000):
            conn.execute(sa.insert(t.manifests), manifests[start : start + 5000])
        for start in range(0, len(references), 5000):
            conn.execute(sa.insert(t.manifest_references), references[start : start + 5000])
        conn.execute(sa.insert(t.tags), tags)


def empty(db: Database) -> None:
    with db.write() as conn:
        for table in (
            t.tags,
            t.manifest_references,
            t.manifests,
            t.repositories,
            t.namespaces,
            t.blobs,
        ):
            conn.execute(sa.delete(table))


def run(count: int, url: str | None, base: Path) -> tuple[float, int, int]:
    work = base / str(count)
    work.mkdir()
    db = Database(url or f"sqlite:///{work / 'dockyard.db'}")
    try:
        db.migrate()
        empty(db)
        populate(db, count)
        store = FilesystemBlobStore(work / "storage", fsync=False)
        started = time.perf_counter()
        report = collect_garbage(db, store, grace=timedelta(0), upload_age=timedelta(days=7))
        elapsed = time.perf_counter() - started
        with db.read() as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(t.manifests)).scalar_one()
        return elapsed, len(report.manifests), int(left)
    finally:
        db.dispose()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="1000,10000,100000")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    ok = True
    print("| untagged manifests | gc seconds | removed per second | removed | left |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="dockyard-gc-bench-") as tmp:
        for count in (int(c) for c in args.counts.split(",")):
            elapsed, removed, left = run(count, args.database_url, Path(tmp))
            ok = ok and removed == count and left == TAGGED
            print(
                f"| {count:,} | {elapsed:.2f} | {removed / elapsed:,.0f} | {removed:,} | {left} |",
                flush=True,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
