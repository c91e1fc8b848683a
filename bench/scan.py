"""Vulnerability scan benchmark: import rate, scan time and scan memory on a real image.

    .venv/bin/python bench/scan.py [--records N] [--runs N] [--seed N]

1. A Debian ``debootstrap --variant=minbase`` root (mirror and suite from the machine's
   apt configuration; built once and cached under ``~/.cache/dockyard-tests``, as the
   end-to-end test does) is committed by buildah to an OCI layout in a temporary
   directory.
2. Its packages are listed (untimed), and N (default 100,000) OSV records are generated
   over their source package names in the image's ``Debian:NN`` ecosystem: fixes older
   than what is installed, ranges that start later, ``last_affected`` bounds below,
   records for other releases and for packages that are not installed, and about one in
   a hundred that does match. They are written as one zip archive, as osv.dev publishes.
3. Import: ``VulnDB.import_paths`` of that archive into an empty database (in this
   process); the figure is records per second.
4. Scan: ``dockyard scan --format json`` of the image against that database, run as a
   child process; wall time of the whole command (start-up included) and the child's
   peak resident memory (``ru_maxrss`` from ``wait4``). The best time and the highest
   memory of ``--runs`` runs.

5. Scans in the registry (``bench/_scans.py``, skipped with ``--no-registry``): push
   throughput with scan on push against without, a burst of 50 distinct images scanned
   by the job workers against 50 x the CLI's time, rescanning ``--rescans`` stored images
   after an import, and each job worker's peak memory.

Prints a markdown table against the targets: scan < 2 s, memory < 300 MB, import >
5,000 records/s, push throughput with scans ≥ 0.95 of without. Exit status 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from _scans import RegistryScans, ScanFigures  # noqa: E402
from tests.scanning.images import buildah_oci_image, debootstrap_tarball  # noqa: E402

from dockyard.scanning.model import Package  # noqa: E402
from dockyard.scanning.scan import inventory  # noqa: E402
from dockyard.scanning.vulndb import VulnDB  # noqa: E402

TARGET_SCAN_S = 2.0
TARGET_MEMORY_MB = 300.0
TARGET_IMPORT_RPS = 5000.0
TARGET_SCAN_OVERHEAD = 0.95
CVSS = [
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N",
    "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
]
URGENCY = ["low", "medium", "high", "not yet assigned", "unimportant"]


@dataclass(frozen=True)
class Figures:
    packages: int
    records: int
    import_seconds: float
    scan_seconds: float
    peak_mb: float
    findings: int
    registry: ScanFigures | None = None


def log(message: str) -> None:
    print(f"bench/scan: {message}", file=sys.stderr, flush=True)


# -- records -------------------------------------------------------------------------------


def _record(
    rng: random.Random, n: int, ecosystem: str, name: str, events: list[dict[str, str]]
) -> dict[str, object]:
    record: dict[str, object] = {
        "schema_version": "1.6.0",
        "id": f"DEBIAN-BENCH-{n:06d}",
        "modified": f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
        "published": "2023-06-01T00:00:00Z",
        "aliases": [f"CVE-{2000 + n % 25}-{n:05d}"],
        "summary": f"{name}: a generated vulnerability number {n}",
        "details": "Generated for the scan benchmark. " * rng.randint(1, 6),
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
                "ecosystem_specific": {"urgency": rng.choice(URGENCY)},
            }
        ],
        "references": [{"type": "ADVISORY", "url": f"https://example.org/advisory/{n}"}],
    }
    kind = rng.random()
    if kind < 0.5:
        record["severity"] = [{"type": "CVSS_V3", "score": rng.choice(CVSS)}]
    elif kind < 0.8:
        record["database_specific"] = {"severity": rng.choice(["HIGH", "MODERATE", "LOW"])}
    return record


def generate(packages: list[Package], count: int, seed: int) -> list[dict[str, object]]:
    """``count`` records over the image's source packages, about 1 % of them matching."""
    rng = random.Random(seed)
    sources = sorted({(p.source_name, p.source_version) for p in packages})
    ecosystem = packages[0].ecosystem
    base, _, release = ecosystem.partition(":")
    other_release = f"{base}:{int(release) - 1}" if release.isdigit() else f"{base}:0"
    records = []
    for n in range(count):
        name, version = rng.choice(sources)
        pick = rng.random()
        target = ecosystem
        if pick < 0.40:  # fixed long ago: the installed version is newer
            events = [{"introduced": "0"}, {"fixed": f"{version}~bench{n}"}]
        elif pick < 0.55:  # a regression introduced after the installed version
            events = [{"introduced": f"{version}+bench{n}"}, {"fixed": f"{version}+bench{n}.1"}]
        elif pick < 0.65:  # last affected below what is installed
            events = [{"introduced": "0"}, {"last_affected": f"{version}~old{n}"}]
        elif pick < 0.80:  # another release
            target = other_release
            events = [{"introduced": "0"}, {"fixed": f"{version}+bench{n}"}]
        elif pick < 0.99:  # a package the image does not have
            name = f"{name}-notinstalled{n % 997}"
            events = [{"introduced": "0"}, {"fixed": f"{version}+bench{n}"}]
        elif pick < 0.995:  # matches, fixed in a later version
            events = [{"introduced": "0"}, {"fixed": f"{version}+deb{n}u1"}]
        else:  # matches, no fix yet
            events = [{"introduced": "0"}]
        records.append(_record(rng, n, target, name, events))
    return records


def write_zip(records: list[dict[str, object]], path: Path) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for record in records:
            z.writestr(f"{record['id']}.json", json.dumps(record))


# -- measurements --------------------------------------------------------------------------


def measure_scan(dockyard: str, db: Path, ref: str) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, findings) of one ``dockyard scan`` child."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(
            [dockyard, "scan", "--db", str(db), "--format", "json", ref],
            stdout=out,
            stderr=subprocess.PIPE,
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        stderr = child.stderr.read().decode() if child.stderr else ""
        if child.stderr:
            child.stderr.close()
        if child.returncode != 0:
            raise SystemExit(f"dockyard scan failed ({child.returncode}): {stderr}")
        out.seek(0)
        report = json.load(out)
    return wall, usage.ru_maxrss / 1024, len(report["vulnerabilities"])


def prepare(work: Path, records: int, seed: int) -> dict[str, float]:
    """List the image's packages, generate and import the records (in a child process:
    see :func:`run`); the figures as JSON on stdout."""
    ref = f"oci:{work / 'layout'}:latest"
    packages = [p for p in inventory(ref).packages if p.ecosystem.startswith("Debian")]
    if not packages:
        raise SystemExit("the debootstrap image has no Debian packages")
    log(f"{len(packages)} packages; generating {records:,} records…")
    archive = work / "all.zip"
    write_zip(generate(packages, records, seed), archive)
    log("importing…")
    invalid: list[str] = []
    with VulnDB(work / "db") as db:
        started = time.perf_counter()
        stats = db.import_paths([archive], on_invalid=lambda i, r: invalid.append(f"{i}: {r}"))
        import_seconds = time.perf_counter() - started
    if invalid or stats.imported != records:
        raise SystemExit(f"import: {stats}, invalid: {invalid[:5]}")
    return {
        "packages": len(packages),
        "import_seconds": import_seconds,
        "ecosystem": packages[0].ecosystem,
        "package": packages[0].source_name or packages[0].name,
    }


@dataclass(frozen=True)
class RegistryOptions:
    images: int
    rounds: int
    burst: int
    rescans: int


def run(records: int, runs: int, seed: int, registry: RegistryOptions | None) -> Figures:
    work = Path(tempfile.mkdtemp(prefix="dockyard-bench-scan-"))
    try:
        log("debootstrap root file system (cached after the first run)…")
        tarball, source = debootstrap_tarball()
        log(f"{source.suite} from the apt configuration; committing with buildah…")
        buildah_oci_image(tarball, work / "layout")
        # Linux counts the resident size of the parent at fork time in a child's
        # ru_maxrss: the big work (100,000 records in memory) happens in a child, so that
        # this process stays small and the scan children's figure is their own.
        options = ["--prepare", str(work), "--records", str(records), "--seed", str(seed)]
        prepared = subprocess.run(
            [sys.executable, __file__, *options],
            stdout=subprocess.PIPE,
            check=True,
        )
        figures = json.loads(prepared.stdout)
        dockyard = str(Path(sys.executable).with_name("dockyard"))
        ref = f"oci:{work / 'layout'}:latest"
        log(f"scanning {runs} times…")
        results = [measure_scan(dockyard, work / "db", ref) for _ in range(runs)]
        wall = min(r[0] for r in results)
        peak = max(r[1] for r in results)
        in_registry = None
        if registry is not None:
            section = RegistryScans(
                work / "registry",
                work / "layout",
                work / "all.zip",
                (str(figures["ecosystem"]), str(figures["package"])),
                images=registry.images,
                rounds=registry.rounds,
                burst=registry.burst,
                rescans=registry.rescans,
            )
            try:
                in_registry = section.run()
            finally:
                section.stop()
        return Figures(
            int(figures["packages"]),
            records,
            float(figures["import_seconds"]),
            wall,
            peak,
            results[0][2],
            in_registry,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(f: Figures) -> tuple[str, bool]:
    rate = f.records / f.import_seconds
    rows = [
        (
            f"import of {f.records:,} OSV records (zip): records/s (↑)",
            f"{rate:,.0f}",
            f"> {TARGET_IMPORT_RPS:,.0f}",
            rate > TARGET_IMPORT_RPS,
        ),
        (
            f"scan of the debootstrap image ({f.packages} packages), wall s (↓)",
            f"{f.scan_seconds:.2f}",
            f"< {TARGET_SCAN_S:g}",
            f.scan_seconds < TARGET_SCAN_S,
        ),
        (
            "scan peak memory (ru_maxrss), MB (↓)",
            f"{f.peak_mb:.0f}",
            f"< {TARGET_MEMORY_MB:g}",
            f.peak_mb < TARGET_MEMORY_MB,
        ),
    ]
    r = f.registry
    if r is not None:
        ratio = r.on_ips / r.off_ips
        rows.append(
            (
                f"push throughput, scan on push on / off ({r.on_ips:.1f} / {r.off_ips:.1f} img/s)",
                f"{ratio:.2f}",
                f">= {TARGET_SCAN_OVERHEAD:g}",
                ratio >= TARGET_SCAN_OVERHEAD,
            )
        )
    lines = ["| figure | value | target | met |", "| --- | ---: | ---: | --- |"]
    lines += [f"| {a} | {b} | {c} | {'yes' if ok else 'NO'} |" for a, b, c, ok in rows]
    lines.append("")
    lines.append(
        f"Import took {f.import_seconds:.1f} s; the scan reported {f.findings} findings "
        "(the generated records that match)."
    )
    if r is not None:
        serial = r.burst_images * f.scan_seconds
        lines.append(
            f"Burst: {r.burst_images} distinct images pushed at once were all scanned "
            f"{r.burst_seconds:.1f} s after the first push began; {r.burst_images} x the CLI's "
            f"time is {serial:.1f} s ({serial / r.burst_seconds:.2f}x as long)."
        )
        lines.append(
            f"Rescan: {r.rescan_images} stored images rescanned {r.rescan_seconds:.1f} s after "
            f"an import began: {60 * r.rescan_images / r.rescan_seconds:,.0f} images/minute."
        )
        peaks = ", ".join(f"{mb:.0f}" for mb in sorted(r.worker_peaks_mb))
        lines.append(f"Job workers' peak memory (VmHWM), MB: {peaks}.")
        lines += [f"Note: {note}." for note in r.notes]
    return "\n".join(lines), all(ok for *_, ok in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-registry", action="store_true", help="skip scans in the registry")
    parser.add_argument("--images", type=int, default=100, help="images per overhead round")
    parser.add_argument("--rounds", type=int, default=2, help="overhead rounds per case")
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--rescans", type=int, default=1000)
    args = parser.parse_args()
    if args.prepare:
        print(json.dumps(prepare(args.prepare, args.records, args.seed)))
        return
    registry = None
    if not args.no_registry:
        registry = RegistryOptions(args.images, args.rounds, args.burst, args.rescans)
    figures = run(args.records, args.runs, args.seed, registry)
    text, met = report(figures)
    print(text)
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
