"""Running Dockyard: first start, restarts, logs, metrics, TLS, several workers."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fixtures.backends import all_backends
from tests.fixtures.oci import assert_intact, push_image
from tests.fixtures.server import DockyardServer, free_port, make_server, running_server


def test_first_start_generates_admin_password_once(tmp_path: Path) -> None:
    server = make_server(tmp_path, {"DOCKYARD_ADMIN_PASSWORD": ""})
    # make_server ran `dockyard namespace create`, which bootstrapped the instance.
    secret_file = server.data_dir / "admin-password"
    password = secret_file.read_text().strip()
    assert len(password) >= 16
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    server.start()
    try:
        assert password not in server.log()  # printed once, at first start, not again
        with server.client(auth=("admin", password)) as c:
            assert c.get("/v2/").status_code == 200
        with server.client(auth=("admin", "wrong")) as c:
            assert c.get("/v2/").status_code == 401
    finally:
        server.stop()
    assert secret_file.read_text().strip() == password


def test_generated_password_is_printed_on_first_start(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DOCKYARD_DATA_DIR": str(tmp_path / "d"),
        "DOCKYARD_ADMIN_PASSWORD": "",
    }
    exe = Path(sys.executable).with_name("dockyard")
    first = subprocess.run(
        [str(exe), "namespace", "list"], env=env, capture_output=True, text=True, check=True
    )
    password = (tmp_path / "d" / "admin-password").read_text().strip()
    assert password in first.stderr
    second = subprocess.run(
        [str(exe), "namespace", "list"], env=env, capture_output=True, text=True, check=True
    )
    assert password not in second.stderr


@all_backends
def test_upload_survives_restart(dockyard_server: DockyardServer) -> None:
    first, second = os.urandom(300_000), os.urandom(200_000)
    digest = "sha256:" + hashlib.sha256(first + second).hexdigest()
    with dockyard_server.client() as c:
        r = c.post("/v2/library/resume/blobs/uploads/")
        location = r.headers["Location"]
        r = c.patch(location, content=first, headers={"Content-Range": f"0-{len(first) - 1}"})
        assert r.status_code == 202
    dockyard_server.kill()
    dockyard_server.start()
    with dockyard_server.client() as c:
        r = c.get(location)
        assert r.status_code == 204
        assert r.headers["Range"] == f"0-{len(first) - 1}"
        end = len(first) + len(second) - 1
        r = c.patch(location, content=second, headers={"Content-Range": f"{len(first)}-{end}"})
        assert r.status_code == 202
        r = c.put(location, params={"digest": digest})
        assert r.status_code == 201, r.text
        assert c.get(f"/v2/library/resume/blobs/{digest}").content == first + second


def test_logs_metrics_and_request_ids(dockyard_server: DockyardServer) -> None:
    with dockyard_server.client() as c:
        image = push_image(c, "library/observed", "v1")
        r = c.get("/v2/library/observed/manifests/v1", headers={"X-Request-Id": "trace-me-42"})
        assert r.headers["X-Request-Id"] == "trace-me-42"
        # The push's fan-out and its scan run in the workers; the queue drains and the
        # metrics say so.
        deadline = time.monotonic() + 30
        while True:
            metrics = c.get("/metrics").text
            drained = (
                'dockyard_jobs_queued{kind="events.fanout"} 0.0' in metrics
                and 'dockyard_jobs_queued{kind="scans.scan"} 0.0' in metrics
            )
            if drained or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert 'dockyard_http_requests_total{method="GET",route="manifests",status="200"}' in metrics
    assert 'dockyard_http_requests_total{method="PUT",route="manifests",status="201"}' in metrics
    assert "dockyard_http_request_duration_seconds_bucket" in metrics
    assert 'dockyard_http_received_bytes_total{route="uploads"}' in metrics
    assert "dockyard_uploads_in_progress 0.0" in metrics
    # Nothing is left queued (no webhooks: no delivery), and the queue says so.
    assert 'dockyard_jobs_queued{kind="webhooks.deliver"} 0.0' in metrics
    assert 'dockyard_jobs_queued{kind="events.fanout"} 0.0' in metrics
    assert 'dockyard_jobs_queued{kind="scans.scan"} 0.0' in metrics
    received = next(
        line
        for line in metrics.splitlines()
        if line.startswith('dockyard_http_received_bytes_total{route="uploads"}')
    )
    assert float(received.split()[-1]) >= sum(len(b) for b in image.blobs.values())
    lines = [
        json.loads(line) for line in dockyard_server.log().splitlines() if line.startswith("{")
    ]
    traced = [entry for entry in lines if entry.get("request_id") == "trace-me-42"]
    assert traced, "the request's log line carries its request id"
    assert traced[0]["status"] == 200
    assert traced[0]["path"] == "/v2/library/observed/manifests/v1"
    # Secrets never reach the logs.
    assert "admin-test-password" not in dockyard_server.log()


def test_tls(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    with running_server(
        tmp_path, {"DOCKYARD_TLS_CERT": str(cert), "DOCKYARD_TLS_KEY": str(key)}
    ) as server:
        context = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(verify=context, auth=("admin", "admin-test-password")) as c:
            r = c.get(f"https://{server.host}/v2/")
            assert r.status_code == 200
            r = c.get(f"https://{server.host}/v2/", auth=None)
            assert 'realm="https://127.0.0.1:' in r.headers["WWW-Authenticate"]


def test_several_workers_share_one_instance(tmp_path: Path) -> None:
    with running_server(tmp_path, {"DOCKYARD_WORKERS": "2"}) as server:
        with server.client() as c:
            images = [push_image(c, "library/multi", f"v{i}") for i in range(6)]
        pids = set()
        for image in images:
            with server.client() as c:  # new connections may land on either worker
                assert_intact(c, image)
        for _ in range(20):
            with server.client() as c:
                metrics = c.get("/metrics").text
                pids.add(c.get("/healthz").headers.get("x-request-id", "").split("-")[0])
            # Whichever worker answers, it counts every worker's requests.
            assert (
                'dockyard_http_requests_total{method="PUT",route="manifests",status="201"} 6.0'
                in metrics
            )
        assert len(pids) == 2, "requests should have reached both workers"


def test_serve_flags(tmp_path: Path) -> None:
    """`dockyard serve` takes --data-dir, --config, --listen and --region itself."""
    port = free_port()
    config = tmp_path / "dockyard.toml"
    config.write_text("token-ttl = 77\n")
    exe = Path(sys.executable).with_name("dockyard")
    env = {**os.environ, "DOCKYARD_ADMIN_PASSWORD": "flags-pw", "NO_PROXY": "*"}
    env.pop("DOCKYARD_DATA_DIR", None)
    proc = subprocess.Popen(
        [
            str(exe),
            "serve",
            "--data-dir",
            str(tmp_path / "flagdata"),
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
            "--region",
            "moon-1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        r = httpx.get(
            f"http://127.0.0.1:{port}/auth/token",
            params={"service": "dockyard", "scope": "repository:library/x:pull"},
            auth=("admin", "flags-pw"),
        )
        assert r.status_code == 200
        assert r.json()["expires_in"] == 77
        assert (tmp_path / "flagdata" / "dockyard.db").exists()
        # A given password is not written down (only a generated one is).
        assert not (tmp_path / "flagdata" / "admin-password").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _peak_memory_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])


def test_uploads_stream_without_holding_the_blob(dockyard_server: DockyardServer) -> None:
    """A 384 MiB blob passes through in bounded memory, chunked and monolithic alike."""
    chunk = os.urandom(1 << 20)
    count = 384
    hasher = hashlib.sha256()
    for _ in range(count):
        hasher.update(chunk)
    digest = f"sha256:{hasher.hexdigest()}"
    assert dockyard_server.proc is not None
    pid = dockyard_server.proc.pid
    before = _peak_memory_kib(pid)
    with dockyard_server.client() as c:
        location = c.post("/v2/library/huge/blobs/uploads/").headers["Location"]
        r = c.put(
            location,
            params={"digest": digest},
            content=(chunk for _ in range(count)),
            headers={"Content-Length": str(count << 20)},
        )
        assert r.status_code == 201, r.text
        r = c.post(
            "/v2/library/huge2/blobs/uploads/",
            params={"digest": digest},
            content=(chunk for _ in range(count)),
            headers={"Content-Length": str(count << 20)},
        )
        assert r.status_code == 201, r.text
        pulled = hashlib.sha256()
        with c.stream("GET", f"/v2/library/huge/blobs/{digest}") as response:
            for piece in response.iter_bytes():
                pulled.update(piece)
        assert f"sha256:{pulled.hexdigest()}" == digest
    grown_mib = (_peak_memory_kib(pid) - before) / 1024
    assert grown_mib < 128, f"the server's peak memory grew by {grown_mib:.0f} MiB"
