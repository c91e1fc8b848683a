"""The job worker ``dockyard serve`` runs beside itself.

Jobs run in a process of their own, ``dockyard worker --supervised``, rather than in
the server's: a Python process runs on one core at a time, and webhook deliveries,
scans and builds would take that core from the pushes and pulls the server answers.
The server starts the worker, starts it again if it dies, and stops it (SIGTERM: it
lets running jobs finish within the grace time) when the server stops; a worker whose
server is killed stops too.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading

log = logging.getLogger(__name__)
SUPERVISOR = "_DOCKYARD_SUPERVISOR_PID"
"""The server's process id, in its worker's environment."""


class JobProcess:
    def __init__(self, concurrency: int, environ: dict[str, str], *, grace: float) -> None:
        self.concurrency = concurrency
        self.environ = environ
        self.grace = grace
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker (nothing when there are no job slots) and watch it."""
        if self.concurrency <= 0:
            return
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="job-worker", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        command = [
            sys.executable,
            "-m",
            "dockyard.cli.main",
            "worker",
            "--concurrency",
            str(self.concurrency),
            "--supervised",
        ]
        with self._lock:
            env = {**os.environ, **self.environ, SUPERVISOR: str(os.getpid())}
            self._proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)

    def _watch(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            code = proc.wait()
            if self._stopping.is_set():
                return
            log.warning("the job worker exited with %s; starting it again in %.0f s", code, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, 30.0)
            self._spawn()

    def stop(self) -> None:
        """SIGTERM the worker and wait for it (its grace time, and a little more)."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=self.grace + 10)
        except subprocess.TimeoutExpired:
            log.warning("the job worker did not stop within %.0f s; killing it", self.grace + 10)
            proc.kill()
            proc.wait()


def stop_with_parent() -> None:
    """In a supervised worker: receive SIGTERM when the server that started it dies
    (however it dies, ``kill -9`` included), and stop at once if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    expected = os.environ.get(SUPERVISOR, "")
    if expected and str(os.getppid()) != expected:
        os.kill(os.getpid(), signal.SIGTERM)
