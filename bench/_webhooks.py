"""The webhooks section (Dockyard only): what push webhooks cost a push, how soon they
arrive, and how fast a backlog of deliveries drains.

It runs on Dockyard servers of its own (a fresh data directory each, started after the
registry comparison has stopped its servers), with ``DOCKYARD_WEBHOOK_ALLOW_NETWORKS=
127.0.0.0/8`` so that deliveries may reach the receiver: ``_receiver.py``, a separate
asyncio process on 127.0.0.1 that answers every POST at once and records when it came.

9. Overhead: phase 6's workload (small images, 8 at a time, into 4 repositories), into
   a namespace without webhooks and into one with 3 namespace webhooks (trigger
   ``all``) to the receiver; rounds alternate between the two and the queue is left to
   empty (every delivery received) before the next round.
10. Latency: one push started every 1/rate seconds (50/s for 10 s) into a repository
    with one webhook; per push, from the manifest PUT's 201 reaching the client to the
    receiver having read the POST, matched by the payload's tag; both sides read
    CLOCK_MONOTONIC, one clock for every process on the machine.
11. Drain: a repository with 10 webhooks gets 1,000 tags pushed while the server runs
    no job workers (``DOCKYARD_JOB_WORKERS=0``); ``dockyard worker --queues events``
    fans the events out (10,000 ``webhooks.deliver`` jobs queued, none delivered); then
    ``dockyard serve`` starts with its default job workers, timed from its start until
    the receiver has all 10,000 deliveries (and until the queue is empty).

Every delivery's ``webhook-signature`` is checked against the secret its webhook was
created with, each one must arrive (once per ``webhook-id``) with the tag and digest
that was pushed, and no job may end dead or failed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import math
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _phases import (
    Cost,
    Image,
    Meter,
    Outcome,
    Session,
    Sizes,
    _loopback_only,
    make_image,
    parallel,
)
from _servers import ADMIN_PASSWORD, ADMIN_USER, BenchError, Registry, stop_group

RECEIVER_SCRIPT = Path(__file__).with_name("_receiver.py")
DELIVER = "webhooks.deliver"
FANOUT = "events.fanout"
LATENCY_IN_FLIGHT = 32
"""Pushes the latency phase lets run at once; a server that falls behind the pace shows
as late starts (noted), not as a slower pace."""
_QUEUED = re.compile(r'^dockyard_jobs_queued\{kind="([^"]+)"\} (\S+)$', re.MULTILINE)

TARGETS = {
    "wh_ratio": (">=", 0.95, "with / without webhooks ≥ 0.95 (at most 5 % slower)"),
    "wh_latency_p50": ("<", 200.0, "p50 < 200 ms"),
    "wh_latency_p99": ("<", 1000.0, "p99 < 1,000 ms"),
    "wh_drain_rate": (">=", 200.0, "≥ 200 deliveries/s"),
}
"""Figure key → (comparison, bound, wording): the targets the issue set."""


def meets(key: str, value: float) -> bool:
    op, bound, _ = TARGETS[key]
    return value >= bound if op == ">=" else value < bound


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (the value at rank ceil(fraction * n))."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _sum_costs(costs: list[Cost]) -> Cost:
    return Cost(
        costs[0].tool,
        sum(c.wall for c in costs),
        sum(c.client_cpu for c in costs),
        sum(c.server_cpu for c in costs),
        sum(c.machine_cpu for c in costs),
    )


def _wait(check: Callable[[], bool], timeout: float, what: str, alive: Callable[[], None]) -> None:
    """Poll ``check`` every 50 ms until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        alive()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


# -- the receiver ------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One POST the receiver got."""

    arrived: float
    path: str
    webhook_id: str
    timestamp: str
    signature: str
    body: str

    def payload(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.body)
        except ValueError as exc:
            raise BenchError(f"delivery {self.webhook_id}: the body is not JSON") from exc
        if not isinstance(parsed, dict) or not isinstance(parsed.get("push_data"), dict):
            raise BenchError(f"delivery {self.webhook_id}: no push_data in {self.body[:200]}")
        return parsed

    def signed_by(self, secret: str) -> bool:
        """Standard Webhooks: base64 HMAC-SHA256 of ``id.timestamp.body`` keyed with the
        base64-decoded secret, one ``v1,<signature>`` per secret in the header."""
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = f"{self.webhook_id}.{self.timestamp}.".encode() + self.body.encode()
        expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        return any(hmac.compare_digest(expected, part) for part in self.signature.split())


class Receiver:
    """``_receiver.py`` in a process (and session) of its own."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.http: httpx.Client | None = None
        self.port = 0

    def start(self, timeout: float = 30.0) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(RECEIVER_SCRIPT)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode(errors="replace") if ready else ""
        found = re.fullmatch(r"port (\d+)\s*", line)
        if not found:
            raise BenchError(f"the webhook receiver did not start ({line!r})\n{self.log_tail()}")
        self.port = int(found.group(1))
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            timeout=60.0,
            event_hooks={"request": [_loopback_only]},
        )

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError("the webhook receiver is not running")
        return self.proc.pid

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError(f"the webhook receiver is no longer running\n{self.log_tail()}")

    def _get(self, path: str, **params: Any) -> Any:
        if self.http is None:
            raise BenchError("the webhook receiver is not running")
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def count(self) -> int:
        return int(self._get("/_bench/stats")["count"])

    def last_arrival(self) -> float:
        return float(self._get("/_bench/stats")["last"])

    def deliveries(self, start: int = 0) -> list[Delivery]:
        return [Delivery(*row) for row in self._get("/_bench/records", start=start)]

    def wait_for(self, count: int, timeout: float, alive: Callable[[], None]) -> None:
        """Until ``count`` deliveries have arrived in all."""
        _wait(lambda: self.count() >= count, timeout, f"{count} webhook deliveries", alive)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no receiver log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc, grace=5.0)
            if proc.stdout is not None:
                proc.stdout.close()


# -- Dockyard's management API -----------------------------------------------------------


class Api:
    """The administrator on ``/api/v1`` (Basic auth), and ``/metrics``."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.http = httpx.Client(
            base_url=registry.base_url,
            auth=(ADMIN_USER, ADMIN_PASSWORD),
            timeout=60.0,
            event_hooks={"request": [_loopback_only]},
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.http.request(method, path, json=body, params=params or None)
        if response.status_code >= 300:
            raise BenchError(
                f"{method} {path}: {response.status_code} {response.text[:300]}\n"
                f"{self.registry.log_tail(15)}"
            )
        return response.json() if response.content else None

    def namespace(self, name: str) -> None:
        self.call("POST", "/api/v1/namespaces", {"name": name})

    def repository(self, namespace: str, name: str) -> None:
        self.call("POST", "/api/v1/repositories", {"namespace": namespace, "name": name})

    def webhook(self, scope: str, name: str, url: str) -> str:
        """Create a push webhook (trigger ``all``) on ``scope`` (``/api/v1/namespaces/NS``
        or ``/api/v1/repositories/NS/REPO``); returns its signing secret."""
        body = {"name": name, "url": url, "trigger": {"type": "all"}, "events": ["push"]}
        created = self.call("POST", f"{scope}/webhooks", body)
        secret = created.get("secret") if isinstance(created, dict) else None
        if not isinstance(secret, str):
            raise BenchError(f"creating webhook {name}: no secret in the answer")
        return secret

    def queued(self) -> dict[str, int]:
        """Queued jobs by kind, from /metrics' ``dockyard_jobs_queued`` gauges."""
        response = self.http.get("/metrics", auth=None)
        response.raise_for_status()
        return {k: round(float(v)) for k, v in _QUEUED.findall(response.text)}

    def jobs(self, state: str, kind: str | None = None) -> list[dict[str, Any]]:
        """Up to 10 jobs in ``state`` (of ``kind``), newest first."""
        params = {"state": state, "limit": 10} | ({"kind": kind} if kind else {})
        found = self.call("GET", "/api/v1/jobs", **params)
        return list(found["items"])

    def idle(self) -> bool:
        """Nothing queued, nothing running."""
        return not any(self.queued().values()) and not self.jobs("running")

    def check_no_failures(self) -> None:
        for state in ("dead", "failed"):
            bad = self.jobs(state)
            if bad:
                first = bad[0]
                raise BenchError(
                    f"{len(bad)}+ jobs are {state}, e.g. {first['kind']} {first['id']}: "
                    f"{first['last_error'][:300]}"
                )


# -- the section -------------------------------------------------------------------------


class WebhookSection:
    """Phases 9 to 11 on Dockyard servers of their own; figures go to :attr:`out`."""

    def __init__(self, sizes: Sizes, workdir: Path, *, workers: int | None = None):
        self.sizes = sizes
        self.workdir = workdir
        self.workers = workers
        self.out = Outcome()
        self.receiver = Receiver(workdir / "receiver.log")
        self.registries: list[Registry] = []
        self.secrets: dict[str, str] = {}
        """Receiver path → the secret of the webhook that posts there."""

    def _say(self, text: str) -> None:
        print(f"[bench] dockyard webhooks: {text}", file=sys.stderr, flush=True)

    def _registry(self, name: str, env: dict[str, str] | None = None) -> Registry:
        registry = Registry(
            "dockyard", "dockyard", self.workdir / name, workers=self.workers, env=env
        )
        self.registries.append(registry)
        return registry

    def _alive(self, *registries: Registry) -> Callable[[], None]:
        def check() -> None:
            self.receiver.check_alive()
            for registry in registries:
                registry.check_alive()

        return check

    def _images(self, count: int) -> list[Image]:
        return [make_image(self.sizes.config_size, self.sizes.layer_size) for _ in range(count)]

    def run(self) -> Outcome:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.receiver.start()
        self._say(f"receiver on 127.0.0.1:{self.receiver.port} (pid {self.receiver.pid})")
        server = self._registry("server")
        server.start()
        server.wait_ready()
        with Api(server) as api:
            self.overhead(server, api)
            self.latency(server, api)
        server.stop()
        self.drain()
        self.out.notes.append(
            "webhooks (9-11): Dockyard only, on servers of their own (fresh data directory, "
            "default job workers unless said otherwise, DOCKYARD_WEBHOOK_ALLOW_NETWORKS="
            "127.0.0.0/8); the receiver is a separate asyncio process on 127.0.0.1 answering "
            "204 at once; every delivery's signature, tag and digest checked"
        )
        return self.out

    def log_tails(self) -> str:
        parts = [f"--- webhook receiver ---\n{self.receiver.log_tail()}"]
        parts += [f"{r.workdir.name}: {r.log_tail(15)}" for r in self.registries]
        return "\n".join(parts)

    def stop(self) -> None:
        for registry in self.registries:
            with contextlib.suppress(Exception):
                registry.stop()
        with contextlib.suppress(Exception):
            self.receiver.stop()

    # -- checks ------------------------------------------------------------------------

    def _check(self, deliveries: list[Delivery], expected: dict[tuple[str, str, str], str]) -> None:
        """Each of ``expected`` ((receiver path, repository, tag) → digest) arrived, once
        per webhook-id, signed with its webhook's secret; nothing else arrived."""
        seen: set[str] = set()
        got: set[tuple[str, str, str]] = set()
        for delivery in deliveries:
            if delivery.webhook_id in seen:
                continue  # a redelivery (at least once): counted once
            seen.add(delivery.webhook_id)
            secret = self.secrets.get(delivery.path)
            if secret is None or not delivery.signed_by(secret):
                raise BenchError(
                    f"delivery {delivery.webhook_id} to {delivery.path}: bad signature"
                )
            payload = delivery.payload()
            key = (
                delivery.path,
                str(payload.get("repository", {}).get("repo_full_name")),
                str(payload["push_data"].get("tag")),
            )
            if expected.get(key) != payload["push_data"].get("digest"):
                raise BenchError(f"delivery {delivery.webhook_id}: unexpected {key} {payload}")
            got.add(key)
        if len(got) != len(expected):
            missing = sorted(set(expected) - got)[:3]
            raise BenchError(f"{len(expected) - len(got)} deliveries missing, e.g. {missing}")
        if len(seen) != len(expected):
            raise BenchError(f"{len(seen)} webhook-ids for {len(expected)} deliveries")

    # -- 9. overhead -------------------------------------------------------------------

    def overhead(self, server: Registry, api: Api) -> None:
        sizes = self.sizes
        spaces = {"none": "whbench-none", "hooks": "whbench-hooks"}
        for namespace in spaces.values():
            api.namespace(namespace)
        paths = [f"/hook/overhead-{k}" for k in range(sizes.webhook_hooks)]
        for k, path in enumerate(paths):
            scope = f"/api/v1/namespaces/{spaces['hooks']}"
            self.secrets[path] = api.webhook(scope, f"overhead-{k}", self.receiver.url(path))
        rounds = sizes.webhook_rounds
        images = {cfg: [self._images(sizes.images) for _ in range(rounds)] for cfg in spaces}
        costs: dict[str, list[Cost]] = {cfg: [] for cfg in spaces}
        walls: dict[str, list[float]] = {cfg: [] for cfg in spaces}
        catch_up: list[float] = []
        expected: dict[tuple[str, str, str], str] = {}
        start = self.receiver.count()
        arrived = start
        alive = self._alive(server)
        for r in range(rounds):
            for cfg in ("none", "hooks") if r % 2 == 0 else ("hooks", "none"):
                repos = [f"{spaces[cfg]}/images-{n}" for n in range(sizes.image_repos)]
                jobs = [
                    (repos[i % len(repos)], image, f"r{r}-{i:04d}")
                    for i, image in enumerate(images[cfg][r])
                ]
                hooks = len(paths) if cfg == "hooks" else 0
                self._say(
                    f"round {r + 1}/{rounds}: push {len(jobs)} small images, "
                    f"c={sizes.image_concurrency}, {hooks} webhooks"
                )
                os.sync()
                with (
                    Session(server, repos, sizes.image_concurrency) as s,
                    Meter(server, "httpx") as m,
                ):
                    parallel(lambda job: s.push_image(*job), jobs, sizes.image_concurrency)
                pushed = time.monotonic()
                walls[cfg].append(m.wall)
                costs[cfg].append(m.cost)
                # Untimed: the round's deliveries all arrive and the queue empties before
                # the next round, so that no round pays for another's.
                arrived += hooks * len(jobs)
                self.receiver.wait_for(arrived, 300.0, alive)
                if hooks:
                    catch_up.append(self.receiver.last_arrival() - pushed)
                _wait(api.idle, 300.0, "an empty job queue", alive)
                for path in paths[:hooks]:
                    for repo, image, tag in jobs:
                        expected[(path, repo, tag)] = image.digest
        self._check(self.receiver.deliveries(start), expected)
        api.check_no_failures()
        per_round = len(images["none"][0])
        none = per_round * rounds / sum(walls["none"])
        hooked = per_round * rounds / sum(walls["hooks"])
        self.out.figures["wh_none_ips"] = none
        self.out.figures["wh_hooks_ips"] = hooked
        self.out.figures["wh_ratio"] = hooked / none
        self.out.costs["wh_none"] = _sum_costs(costs["none"])
        self.out.costs["wh_hooks"] = _sum_costs(costs["hooks"])
        spread = ", ".join(
            f"{cfg} {' / '.join(f'{per_round / w:.1f}' for w in walls[cfg])}" for cfg in spaces
        )
        self.out.notes.append(
            f"webhooks 9: {rounds} alternating round(s) per case, images/s per round: {spread}; "
            f"all {len(paths)} x {per_round} deliveries of a round had arrived "
            f"{max(catch_up):.2f} s after its last push at the latest"
        )

    # -- 10. latency -------------------------------------------------------------------

    def latency(self, server: Registry, api: Api) -> None:
        sizes = self.sizes
        count = sizes.latency_rate * sizes.latency_seconds
        interval = 1.0 / sizes.latency_rate
        namespace, name = "whbench-latency", "app"
        repo = f"{namespace}/{name}"
        api.namespace(namespace)
        api.repository(namespace, name)
        path = "/hook/latency"
        scope = f"/api/v1/repositories/{namespace}/{name}"
        self.secrets[path] = api.webhook(scope, "latency", self.receiver.url(path))
        images = self._images(count)
        tags = [f"lat-{i:05d}" for i in range(count)]
        planned = [0.0] * count
        started = [0.0] * count
        acked = [0.0] * count
        start = self.receiver.count()
        alive = self._alive(server)
        self._say(f"latency: {count} pushes, one started every {interval * 1000:.0f} ms, 1 webhook")
        os.sync()
        with Session(server, [repo], LATENCY_IN_FLIGHT) as s:

            def push(i: int) -> None:
                started[i] = time.monotonic()
                s.push_image(repo, images[i], tags[i])
                acked[i] = time.monotonic()  # the manifest PUT's 201 is in

            pool = ThreadPoolExecutor(max_workers=LATENCY_IN_FLIGHT, thread_name_prefix="paced")
            futures: list[Future[None]] = []
            try:
                with Meter(server, "httpx") as m:
                    origin = time.monotonic() + 0.05
                    for i in range(count):
                        planned[i] = origin + i * interval
                        delay = planned[i] - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                        futures.append(pool.submit(push, i))
                    for future in futures:
                        future.result()
                    self.receiver.wait_for(start + count, 120.0, alive)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
        _wait(api.idle, 120.0, "an empty job queue", alive)
        deliveries = [d for d in self.receiver.deliveries(start) if d.path == path]
        self._check(deliveries, {(path, repo, tag): images[i].digest for i, tag in enumerate(tags)})
        api.check_no_failures()
        index = {tag: i for i, tag in enumerate(tags)}
        first: dict[int, float] = {}
        for delivery in deliveries:
            i = index[delivery.payload()["push_data"]["tag"]]
            first[i] = min(first.get(i, math.inf), delivery.arrived)
        latencies = [(first[i] - acked[i]) * 1000 for i in range(count)]
        late = [(started[i] - planned[i]) * 1000 for i in range(count)]
        round_trips = [(acked[i] - started[i]) * 1000 for i in range(count)]
        achieved = (count - 1) / (started[-1] - started[0]) if count > 1 else 0.0
        during = sum(1 for i in range(count) if first[i] <= max(acked))
        fifth = max(1, count // 5)
        trend = (percentile(latencies[:fifth], 0.5), percentile(latencies[-fifth:], 0.5))
        self.out.figures["wh_latency_p50"] = percentile(latencies, 0.50)
        self.out.figures["wh_latency_p99"] = percentile(latencies, 0.99)
        self.out.figures["wh_latency_max"] = max(latencies)
        self.out.figures["wh_latency_rate"] = achieved
        self.out.costs["wh_latency"] = m.cost
        self.out.notes.append(
            f"webhooks 10: {count} pushes at {achieved:.1f}/s (start late by p99 "
            f"{percentile(late, 0.99):.0f} ms, max {max(late):.0f} ms); a push (2 blobs + "
            f"manifest) took p50 {percentile(round_trips, 0.5):.0f} ms, p99 "
            f"{percentile(round_trips, 0.99):.0f} ms; {during} of the {count} deliveries arrived "
            f"before the last push's ack; ack to delivery min {min(latencies):.1f} "
            f"ms, p50 of the first fifth of the pushes {trend[0]:.0f} ms, of the last fifth "
            f"{trend[1]:.0f} ms"
            + (" (growing: deliveries fell behind the pushes)" if trend[1] > 2 * trend[0] else "")
        )

    # -- 11. drain ---------------------------------------------------------------------

    def drain(self) -> None:
        sizes = self.sizes
        total = sizes.drain_hooks * sizes.drain_tags
        server = self._registry("drain", env={"DOCKYARD_JOB_WORKERS": "0"})
        server.start()
        server.wait_ready()
        namespace, name = "whbench-drain", "app"
        repo = f"{namespace}/{name}"
        tags = [f"d-{i:05d}" for i in range(sizes.drain_tags)]
        image = self._images(1)[0]
        paths = [f"/hook/drain-{k}" for k in range(sizes.drain_hooks)]
        before = self.receiver.count()
        with Api(server) as api:
            api.namespace(namespace)
            api.repository(namespace, name)
            scope = f"/api/v1/repositories/{namespace}/{name}"
            for k, path in enumerate(paths):
                self.secrets[path] = api.webhook(scope, f"drain-{k}", self.receiver.url(path))
            self._say(
                f"drain: {sizes.drain_hooks} webhooks, push {len(tags)} tags with no job "
                f"workers, fan out with dockyard worker --queues events"
            )
            with Session(server, [repo], sizes.tag_concurrency) as s:
                s.push_image(repo, image, tags[0])
                parallel(
                    lambda tag: s.put_manifest(repo, tag, image.manifest),
                    tags[1:],
                    sizes.tag_concurrency,
                )
            fanout = server.spawn_dockyard("worker", "--queues", "events")
            try:

                def fanned_out() -> bool:
                    queued = api.queued()
                    return queued.get(FANOUT, 0) == 0 and queued.get(DELIVER, 0) >= total

                def alive() -> None:
                    server.check_alive()
                    if fanout.poll() is not None:
                        raise BenchError(f"dockyard worker exited\n{server.log_tail()}")

                _wait(fanned_out, 600.0, f"{total} queued deliveries", alive)
            finally:
                stop_group(fanout)
            queued = api.queued()
            if queued.get(DELIVER) != total or api.jobs("running"):
                raise BenchError(f"expected {total} queued deliveries, not {queued}")
        if self.receiver.count() != before:
            raise BenchError("deliveries arrived while no worker served the webhooks queue")
        server.stop()
        del server.env["DOCKYARD_JOB_WORKERS"]  # dockyard serve's default from here on
        self._say(f"drain: {total} queued deliveries, dockyard serve with default job workers")
        os.sync()
        with Meter(server, "dockyard serve") as m:
            launched = time.monotonic()
            server.start()
            self.receiver.wait_for(before + total, max(600.0, total / 10), self._alive(server))
        with Api(server) as api:
            _wait(api.idle, 120.0, "an empty job queue", self._alive(server))
            emptied = time.monotonic()
            api.check_no_failures()
        deliveries = self.receiver.deliveries(before)
        self._check(deliveries, {(path, repo, tag): image.digest for path in paths for tag in tags})
        arrivals = sorted(d.arrived for d in deliveries)
        self.out.figures["wh_drain_rate"] = total / (arrivals[-1] - launched)
        self.out.figures["wh_drain_steady"] = (total - 1) / (arrivals[-1] - arrivals[0])
        self.out.costs["wh_drain"] = m.cost
        self.out.notes.append(
            f"webhooks 11: first delivery {arrivals[0] - launched:.2f} s after dockyard serve "
            f"was started, the last after {arrivals[-1] - launched:.1f} s; the queue was empty "
            f"(nothing queued or running) {emptied - launched:.1f} s after the start"
        )
        server.stop()
