"""A build's log as the runner writes it, on both databases: lines masked, numbered in
order, bounded with one truncation note, and readable by a follower as they come."""

from __future__ import annotations

import sqlalchemy as sa

from dockyard.builds.git import Masker
from dockyard.builds.runner import LogSink
from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from tests.db.conftest import database, database_url

__all__ = ["database", "database_url"]


def _build(db: Database) -> int:
    now = utcnow()
    with db.write() as conn:
        ns = conn.execute(
            sa.insert(t.namespaces).values(
                name="team", auto_create=True, default_public=False, created_at=now
            )
        ).inserted_primary_key
        assert ns is not None
        repo = conn.execute(
            sa.insert(t.repositories).values(
                namespace_id=ns[0],
                name="app",
                is_public=False,
                summary="",
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key
        assert repo is not None
        build = conn.execute(
            sa.insert(t.builds).values(
                repository_id=repo[0],
                trigger="manual",
                ref_type="branch",
                ref_name="main",
                commit_sha="a" * 40,
                status="building",
                spec="{}",
                created_at=now,
            )
        ).inserted_primary_key
        assert build is not None
        return int(build[0])


def _lines(db: Database, build_id: int) -> list[tuple[int, str, str]]:
    with db.read() as conn:
        rows = conn.execute(
            sa.select(t.build_log_lines.c.line, t.build_log_lines.c.stage, t.build_log_lines.c.text)
            .where(t.build_log_lines.c.build_id == build_id)
            .order_by(t.build_log_lines.c.line)
        ).all()
    return [(int(r.line), r.stage, r.text) for r in rows]


def test_lines_are_masked_numbered_and_bounded(database: Database) -> None:
    build_id = _build(database)
    sink = LogSink(
        database, build_id, Masker(["hunter2-token"]), start_line=0, start_bytes=0, limit=200
    )
    sink.write("cloning with hunter2-token\nsecond line\r\n")
    sink.stage = "building"
    sink.write("third")
    sink.flush()
    assert _lines(database, build_id) == [
        (1, "cloning", "cloning with ****"),
        (2, "cloning", "second line"),
        (3, "building", "third"),
    ]
    for n in range(50):
        sink.write(f"line number {n} of many")
    sink.close()
    lines = _lines(database, build_id)
    assert [n for n, _, _ in lines] == list(range(1, len(lines) + 1))
    assert "later lines are not kept" in lines[-1][2]
    assert sum(len(text.encode()) + 1 for _, _, text in lines[:-1]) <= 200
    with database.read() as conn:
        row = conn.execute(sa.select(t.builds).where(t.builds.c.id == build_id)).one()
    assert row.log_lines == len(lines)
    # A second attempt goes on after the first one's lines, and stays truncated.
    again = LogSink(
        database,
        build_id,
        Masker([]),
        start_line=row.log_lines,
        start_bytes=row.log_bytes,
        limit=200,
    )
    again.write("more")
    again.close()
    assert _lines(database, build_id) == lines
