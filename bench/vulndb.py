"""The shared vulnerability database against the engine's own: import, catch-up, matching.

    .venv/bin/python bench/vulndb.py [--records N] [--database-url URL]

N (default 40,000) generated OSV records in one zip archive, as osv.dev publishes an
ecosystem, are imported

1. by the engine alone (``VulnDB.import_paths`` into a database file), and
2. into the instance's database (``VulnDBService.import_files``: SQLite in a temporary
   folder, or ``--database-url``, e.g. a PostgreSQL database of its own), then
3. a process's matcher cache catches up with the store from empty, and
4. the same archive is imported again (every record kept: the cost of checking alone).

Then 400 packages are matched 20 times against the engine's file and against the
service's matcher (the same code on the same layout: the figures should agree), and
``open()`` of an up-to-date matcher is timed (one single-row read). Prints a markdown
table; wants an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.scanning.osv import many_records, write_zip  # noqa: E402

from dockyard.db.engine import Database  # noqa: E402
from dockyard.scanning.model import Package  # noqa: E402
from dockyard.scanning.service_db import VulnDBService  # noqa: E402
from dockyard.scanning.vulndb import VulnDB  # noqa: E402


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    count = args.records
    with tempfile.TemporaryDirectory(prefix="bench-vulndb-") as tmp:
        work = Path(tmp)
        archive = write_zip(work / "all.zip", many_records(count))
        db = Database(args.database_url or f"sqlite:///{work / 'dockyard.db'}")
        db.migrate()
        service = VulnDBService(db, work / "cache")
        engine = VulnDB(work / "engine")
        rows: list[tuple[str, str]] = []
        seconds = timed(lambda: engine.import_paths([archive]))
        rows.append(("engine import (records/s)", f"{count / seconds:,.0f}"))
        seconds = timed(lambda: service.import_files([archive]))
        rows.append(("store import (records/s)", f"{count / seconds:,.0f}"))
        seconds = timed(service.refresh_cache)
        rows.append(("matcher cache from empty (s)", f"{seconds:.2f}"))
        seconds = timed(lambda: service.import_files([archive]))
        rows.append(("store import again, all kept (s)", f"{seconds:.2f}"))

        packages = [
            Package(f"pkg{i}", "1.0", "Debian:12") for i in range(0, count, max(1, count // 400))
        ]
        rows.append(
            (
                f"match {len(packages)} packages, engine (ms)",
                f"{timed(lambda: [engine.match(packages) for _ in range(20)]) * 50:.1f}",
            )
        )
        with service.open() as matcher:
            spent = timed(lambda: [matcher.match(packages) for _ in range(20)])
        rows.append((f"match {len(packages)} packages, service (ms)", f"{spent * 50:.1f}"))

        def open_current() -> None:
            for _ in range(100):
                with service.open():
                    pass

        rows.append(("open() when current (ms)", f"{timed(open_current) * 10:.2f}"))
        engine.close()
        db.dispose()
    backend = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
    print(f"| {count:,} records, {backend} | figure |")
    print("| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
