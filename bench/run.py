"""Dockyard against CNCF distribution: the same workload, one table of figures and ratios.

    .venv/bin/python bench/run.py [--quick] [--out FILE]
                                  [--only dockyard|distribution|webhooks]
                                  [--targets KIND,KIND] [--dockyard-workers N]

Starts both registries on free loopback ports (data in a temporary directory), runs the
workload of ``_phases.py`` against each in turn and stops both; then runs the webhooks
section of ``_webhooks.py`` (Dockyard only) on Dockyard servers of its own; prints a
markdown table. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import _phases
import _webhooks
import httpx
from _servers import KINDS, REPO_ROOT, BenchError, Registry, ensure_tool

SLOTS = ("dockyard", "distribution")
SECTIONS = ("registry", "webhooks")
SLOT_TITLES = {"dockyard": "Dockyard", "distribution": "distribution"}


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool
    section: str = "registry"


def metrics(sizes: _phases.Sizes) -> list[Metric]:
    mib = _phases.MiB
    small = f"{sizes.small_count} x {sizes.small_size // mib} MiB"
    large = f"{sizes.large_count} x {sizes.large_size // mib} MiB"
    chunked = f"{sizes.chunked_size // mib} MiB in {sizes.chunk_size // mib} MiB chunks"
    pulled = (
        sizes.small_count * sizes.small_size
        + sizes.large_count * sizes.large_size
        + sizes.chunked_size
    ) // mib
    conns = sizes.manifest_connections
    up, down = "↑ higher is better", "↓ lower is better"
    rows = [
        Metric(
            "push_small_mibs",
            f"1. monolithic push {small}, c={sizes.small_concurrency}: MiB/s ({up})",
            True,
        ),
        Metric(
            "push_small_blobs",
            f"1. monolithic push {small}, c={sizes.small_concurrency}: blobs/s ({up})",
            True,
        ),
        Metric(
            "push_large_mibs",
            f"2. monolithic push {large}, c={sizes.large_concurrency}: MiB/s ({up})",
            True,
        ),
        Metric("push_chunked_mibs", f"3. chunked push {chunked}: MiB/s ({up})", True),
    ]
    rows += [
        Metric(f"pull_c{c}_mibs", f"4. blob pull {pulled} MiB, c={c}: MiB/s ({up})", True)
        for c in sizes.pull_concurrency
    ]
    for key, what, tool in (("get", "GET", "wrk"), ("head", "HEAD", "hey")):
        rows += [
            Metric(
                f"manifest_{key}_rps",
                f"5. manifest {what} by tag, {conns} conns ({tool}): req/s ({up})",
                True,
            ),
            Metric(f"manifest_{key}_p50", f"5. manifest {what}: p50 latency, ms ({down})", False),
            Metric(f"manifest_{key}_p99", f"5. manifest {what}: p99 latency, ms ({down})", False),
        ]
    rows += [
        Metric("manifest_non2xx", "5. manifest GET + HEAD: non-2xx responses (must be 0)", False),
        Metric(
            "images_per_s",
            f"6. push {sizes.images} small images, c={sizes.image_concurrency}: images/s ({up})",
            True,
        ),
        Metric(
            "puts_per_s",
            f"6b. manifest PUT alone, {sizes.manifest_puts} distinct manifests and tags, "
            f"c={sizes.put_concurrency}: manifests/s ({up})",
            True,
        ),
        Metric(
            "tags_rps",
            f"7. tags list of {sizes.tags} tags, {sizes.tags_connections} conns: listings/s ({up})",
            True,
        ),
        Metric("tags_p50", f"7. tags list of {sizes.tags} tags: p50 latency, ms ({down})", False),
        Metric(
            "catalog_rps",
            f"7b. _catalog of {sizes.catalog_repos} repositories (Dockyard: RAM user, filtered), "
            f"{sizes.catalog_connections} conns: listings/s ({up})",
            True,
        ),
        Metric(
            "catalog_p50",
            f"7b. _catalog of {sizes.catalog_repos} repositories: p50 latency, ms ({down})",
            False,
        ),
        Metric("peak_rss_mib", f"8. server peak memory (VmHWM), MiB ({down})", False),
        Metric(
            "peak_pss_mib",
            f"8b. server peak proportional memory (Pss, sampled every 0.25 s), MiB ({down})",
            False,
        ),
    ]
    return rows + webhook_metrics(sizes)


def webhook_metrics(sizes: _phases.Sizes) -> list[Metric]:
    up, down = "↑ higher is better", "↓ lower is better"
    images = f"{sizes.images} small images, c={sizes.image_concurrency}"
    hooks = sizes.webhook_hooks
    rate = f"{sizes.latency_rate} pushes/s for {sizes.latency_seconds} s, 1 webhook"
    drain = f"{sizes.drain_hooks * sizes.drain_tags:,} queued deliveries, default job workers"
    rows = [
        ("wh_none_ips", f"9. push {images}, no webhooks: images/s ({up})", True),
        ("wh_hooks_ips", f"9. push {images}, {hooks} webhooks: images/s ({up})", True),
        ("wh_ratio", f"9. {hooks} webhooks / no webhooks (target ≥ 0.95) ({up})", True),
        ("wh_latency_rate", f"10. paced pushes, {rate}: pushes/s achieved", True),
        (
            "wh_latency_p50",
            f"10. push ack → webhook received: p50, ms (target < 200) ({down})",
            False,
        ),
        (
            "wh_latency_p99",
            f"10. push ack → webhook received: p99, ms (target < 1,000) ({down})",
            False,
        ),
        ("wh_latency_max", f"10. push ack → webhook received: max, ms ({down})", False),
        (
            "wh_drain_rate",
            f"11. drain {drain}: deliveries/s from server start (target ≥ 200) ({up})",
            True,
        ),
        ("wh_drain_steady", f"11. drain: deliveries/s, first to last delivery ({up})", True),
    ]
    return [Metric(key, label, higher, "webhooks") for key, label, higher in rows]


PHASES = [
    ("push_small", "1. monolithic push, small blobs"),
    ("push_large", "2. monolithic push, large blobs"),
    ("push_chunked", "3. chunked push"),
    ("pull_c1", "4. blob pull, c=1"),
    ("pull_c8", "4. blob pull, c=8"),
    ("manifest_get", "5. manifest GET"),
    ("manifest_head", "5. manifest HEAD"),
    ("images", "6. small images"),
    ("puts", "6b. manifest PUT alone"),
    ("tags", "7. tags list"),
    ("catalog", "7b. _catalog"),
    ("wh_none", "9. small images, no webhooks"),
    ("wh_hooks", "9. small images, with webhooks"),
    ("wh_latency", "10. paced pushes until delivered"),
    ("wh_drain", "11. drain, from server start"),
]


# -- formatting --------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if float(value).is_integer() and abs(value) < 100:
        return str(int(value))
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}x"


def table(header: list[str], rows: list[list[str]], right_from: int = 1) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def column_titles(registries: dict[str, Registry]) -> dict[str, str]:
    titles = {}
    for slot in SLOTS:
        title = SLOT_TITLES[slot]
        reg = registries.get(slot)
        if reg is not None and reg.kind != slot:
            title = f"{title} slot (ran {reg.kind})"
        titles[slot] = title
    return titles


def report(
    outcomes: dict[str, _phases.Outcome],
    registries: dict[str, Registry],
    sizes: _phases.Sizes,
    context: list[str],
    sections: tuple[str, ...] = SECTIONS,
) -> str:
    titles = column_titles(registries)
    header = ["figure", titles["dockyard"], titles["distribution"], "Dockyard / distribution"]
    rows = []
    for metric in metrics(sizes):
        if metric.section not in sections:
            continue
        a = outcomes["dockyard"].figures.get(metric.key) if "dockyard" in outcomes else None
        b = outcomes["distribution"].figures.get(metric.key) if "distribution" in outcomes else None
        rows.append([metric.label, fmt(a), fmt(b), ratio(a, b)])

    cost_header = ["phase", "registry", "wall s", "load gen cores", "server cores", "other cores"]
    cost_rows = []
    for key, name in PHASES:
        for slot in SLOTS:
            cost = outcomes[slot].costs.get(key) if slot in outcomes else None
            if cost is None:
                continue
            cost_rows.append(
                [
                    f"{name} ({cost.tool})",
                    titles[slot],
                    f"{cost.wall:.2f}",
                    f"{cost.client_cores:.2f}",
                    f"{cost.server_cores:.2f}",
                    f"{cost.other_cores:.2f}",
                ]
            )

    parts = ["## Dockyard vs CNCF distribution", "", *context, "", table(header, rows), ""]
    parts += [
        "Ratios are Dockyard / distribution: above 1x is better for ↑ rows, below 1x is "
        "better for ↓ rows.",
        "",
        "### CPU during each phase",
        "",
        table(cost_header, cost_rows, right_from=2),
        "",
        "Cores = CPU seconds / wall seconds. Load gen is this Python process (httpx: one "
        "GIL, so near 1.0 means the client, not the server, set the pace) or wrk/hey; "
        "server is the registry and its workers; other is every other busy CPU on the "
        "machine (other processes; kernel work such as interrupts and disk writeback). "
        f"The machine has {os.cpu_count()} cores shared by all three: when other stays "
        "well above 0, something else was competing and the figures are disturbed.",
    ]
    ours = outcomes["dockyard"].figures if "dockyard" in outcomes else {}
    if "webhooks" in sections and any(key in ours for key in _webhooks.TARGETS):
        labels = {m.key: m.label.split(" (")[0] for m in webhook_metrics(sizes)}
        checks = []
        for key, (_, _, wording) in _webhooks.TARGETS.items():
            value = ours.get(key)
            verdict = "—" if value is None else "met" if _webhooks.meets(key, value) else "MISSED"
            checks.append([labels[key], wording, fmt(value), verdict])
        parts += [
            "",
            "### Dockyard: webhook targets",
            "",
            table(["figure", "target", "Dockyard", "verdict"], checks, right_from=2),
        ]
    if "policy_token_rps" in ours:
        base = ours.get("manifest_get_rps")
        access = [
            ["administrator, bearer token (phase 5)", fmt(base), "1.00x"],
            [
                "RAM user with policies, bearer token",
                fmt(ours["policy_token_rps"]),
                ratio(ours["policy_token_rps"], base),
            ],
            ["administrator, Basic on every request", fmt(ours["admin_basic_rps"]), "1.00x"],
            [
                "RAM user with policies, Basic on every request",
                fmt(ours["policy_basic_rps"]),
                ratio(ours["policy_basic_rps"], ours["admin_basic_rps"]),
            ],
        ]
        parts += [
            "",
            "### Dockyard: manifest GET with policies (req/s, ↑)",
            "",
            table(["caller", "req/s", "vs the administrator"], access),
            "",
            "The RAM user may pull only through its policies: two custom ones (an Allow "
            "with an IpAddress condition, a Deny elsewhere), its group's read-only policy "
            "and a namespace permission.",
        ]
    notes: list[str] = []
    for slot in SLOTS:
        for note in outcomes[slot].notes if slot in outcomes else []:
            everywhere = all(note in o.notes for o in outcomes.values())
            line = f"- {note}" if everywhere else f"- {titles[slot]}: {note}"
            if line not in notes:
                notes.append(line)
    if notes:
        parts += ["", "Notes:", "", *notes]
    return "\n".join(parts) + "\n"


def describe(
    registries: dict[str, Registry],
    sizes: _phases.Sizes,
    *,
    quick: bool,
    load_at_start: str,
    webhooks: bool = False,
    workers: int | None = None,
) -> list[str]:
    def version(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"

    lines = [
        f"- when: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
        + (" (**--quick**: smaller counts, not comparable with full runs)" if quick else ""),
    ]
    kinds = {reg.kind for reg in registries.values()}
    if "dockyard" in kinds or webhooks:
        rev = version(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"])
        lines.append(
            f"- Dockyard: git {rev}, SQLite + filesystem storage, token auth, "
            f"{f'{workers} workers' if workers else 'default worker count'}, "
            "default job workers (2 slots)"
        )
    if "distribution" in kinds:
        binary = shutil.which("docker-registry") or "docker-registry"
        lines.append(
            f"- distribution: {version([binary, '--version'])}, filesystem storage, "
            "in-memory blob descriptor cache, no auth"
        )
    if registries:
        lines.append(
            f"- wrk threads: {sizes.wrk_threads}; every registry's data in a fresh temp dir"
        )
    if os.environ.get("PYTHONPATH"):
        lines.append(
            f"- PYTHONPATH={os.environ['PYTHONPATH']}: Dockyard was imported from there, "
            "not necessarily from the git tree above"
        )
    lines.append(f"- load average (1, 5, 15 min) at start: {load_at_start}")
    return lines


def load_average() -> str:
    try:
        return ", ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def warn_if_busy() -> None:
    try:
        one_minute = float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    cores = os.cpu_count() or 1
    if one_minute > cores / 2:
        print(
            f"[bench] WARNING: load average {one_minute:.1f} on {cores} cores: other work "
            "on this machine will skew the figures (see the 'other cores' column)",
            file=sys.stderr,
            flush=True,
        )


# -- main --------------------------------------------------------------------------------


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, a smoke run")
    parser.add_argument("--out", type=Path, help="also write the markdown report to FILE")
    parser.add_argument(
        "--only",
        choices=(*SLOTS, "webhooks"),
        help="run only this slot (dockyard also runs the webhooks section), or only the "
        "webhooks section (Dockyard alone)",
    )
    parser.add_argument(
        "--targets",
        default=os.environ.get("BENCH_TARGETS", "dockyard,distribution"),
        help="registry kinds for the Dockyard and distribution slots, e.g. "
        "'distribution,distribution' to test the harness without Dockyard "
        "(default: dockyard,distribution; also BENCH_TARGETS)",
    )
    parser.add_argument(
        "--dockyard-workers",
        type=int,
        default=None,
        help="pass --workers N to dockyard serve (default: its own default)",
    )
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.targets.split(",")]
    if len(kinds) != 2 or any(k not in KINDS for k in kinds):
        parser.error(f"--targets takes two of {', '.join(KINDS)}, comma-separated")
    args.kinds = dict(zip(SLOTS, kinds, strict=True))
    if args.only == "webhooks" and args.kinds["dockyard"] != "dockyard":
        parser.error("--only webhooks needs Dockyard in the Dockyard slot (see --targets)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = _phases.QUICK if args.quick else _phases.FULL
    # --only webhooks: no slot, the webhooks section alone.
    slots = list(SLOTS) if args.only is None else [s for s in SLOTS if s == args.only]
    # Webhooks are Dockyard's alone: with --only distribution, or an A/A run, there is
    # nothing to measure.
    with_webhooks = args.only != "distribution" and args.kinds["dockyard"] == "dockyard"
    sections = tuple(s for s, on in zip(SECTIONS, (bool(slots), with_webhooks), strict=True) if on)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)

    started = time.monotonic()
    warn_if_busy()
    load_at_start = load_average()
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-bench-"))
    registries: dict[str, Registry] = {}
    webhooks = _webhooks.WebhookSection(sizes, workdir / "webhooks", workers=args.dockyard_workers)
    try:
        if slots:
            ensure_tool("wrk", "wrk")
            ensure_tool("hey", "hey")
        for slot in slots:
            if args.kinds[slot] == "distribution":
                ensure_tool("docker-registry", "docker-registry")
        if slots:
            print("[bench] generating data with os.urandom", file=sys.stderr, flush=True)
        data = _phases.Data.generate(sizes) if slots else None
        for slot in slots:
            registries[slot] = Registry(
                slot, args.kinds[slot], workdir / slot, workers=args.dockyard_workers
            )
            registries[slot].start()
        for registry in registries.values():
            registry.wait_ready()
            print(
                f"[bench] {registry.label} up at {registry.base_url} (pid {registry.pid})",
                file=sys.stderr,
                flush=True,
            )
        workloads = {
            slot: _phases.Workload(registries[slot], data, sizes)
            for slot in slots
            if data is not None
        }
        for number, step in enumerate(_phases.STEPS):
            # Both registries take each step before either takes the next, in alternating
            # order, so that they see the same background load; dirty pages the last step
            # left are written out first, untimed.
            for slot in slots if number % 2 == 0 else slots[::-1]:
                os.sync()
                step(workloads[slot])
        for registry in registries.values():
            registry.stop()
        outcomes = {slot: workload.out for slot, workload in workloads.items()}
        if with_webhooks:
            os.sync()
            section = webhooks.run()
            ours = outcomes.setdefault("dockyard", _phases.Outcome())
            ours.figures.update(section.figures)
            ours.costs.update(section.costs)
            ours.notes.extend(section.notes)
        context = describe(
            registries,
            sizes,
            quick=args.quick,
            load_at_start=load_at_start,
            webhooks=with_webhooks,
            workers=args.dockyard_workers,
        )
        text = report(outcomes, registries, sizes, context, sections)
        text += f"\nTotal run time {time.monotonic() - started:.0f} s.\n"
        print(text)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text)
            print(f"[bench] wrote {args.out}", file=sys.stderr)
        return 0
    except (BenchError, httpx.HTTPError) as exc:
        print(f"[bench] FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        for registry in registries.values():
            print(f"[bench] {registry.label}: {registry.log_tail(15)}", file=sys.stderr)
        if webhooks.registries:
            print(f"[bench] webhooks section:\n{webhooks.log_tails()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[bench] interrupted", file=sys.stderr)
        return 130
    finally:
        for registry in registries.values():
            with contextlib.suppress(Exception):
                registry.stop()
        webhooks.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
