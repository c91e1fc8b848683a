"""The job workers ``dockyard serve`` runs beside itself.

Jobs run in processes of their own, ``dockyard worker --supervised``, rather than in
the server's: a Python process runs on one core at a time, and webhook deliveries,
scans and builds would take that core from the pushes and pulls the server answers.
The server starts the workers, starts one again if it dies, and stops them (SIGTERM:
they let running jobs finish within the grace time) when the server stops; a worker
whose server is killed stops too.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger(__name__)
SUPERVISOR = "_DOCKYARD_SUPERVISOR_PID"
"""The server's process id, in its worker's environment."""


class _Supervised:
    """One worker process, started again whenever it exits unasked."""

    def __init__(self, command: list[str], env: dict[str, str], index: int) -> None:
        self.command = command
        self.env = env
        self.index = index
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()

    def spawn(self) -> None:
        with self.lock:
            self.proc = subprocess.Popen(self.command, env=self.env, stdin=subprocess.DEVNULL)

    def watch(self, stopping: threading.Event) -> None:
        delay = 1.0
        while not stopping.is_set():
            proc = self.proc
            assert proc is not None
            code = proc.wait()
            if stopping.is_set():
                return
            log.warning(
                "job worker %d exited with %s; starting it again in %.0f s", self.index, code, delay
            )
            if stopping.wait(delay):
                return
            delay = min(delay * 2, 30.0)
            self.spawn()

    def terminate(self) -> subprocess.Popen[bytes] | None:
        with self.lock:
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return None
        proc.send_signal(signal.SIGTERM)
        return proc


class JobProcess:
    """``--job-workers N``: N worker processes of ``slots`` job slots each. More
    processes put background work on more cores; more slots run more jobs at once in
    one process (deliveries, which wait on the network, need no more cores), each
    process taking its own memory."""

    def __init__(
        self, processes: int, slots: int, environ: dict[str, str], *, grace: float
    ) -> None:
        self.processes = processes
        self.slots = slots
        self.environ = environ
        self.grace = grace
        self._stopping = threading.Event()
        self._workers: list[_Supervised] = []

    def start(self) -> None:
        """Start the workers (none when there are no job slots) and watch them."""
        command = [
            sys.executable,
            "-m",
            "dockyard.cli.main",
            "worker",
            "--concurrency",
            str(self.slots),
            "--supervised",
        ]
        env = {**os.environ, **self.environ, SUPERVISOR: str(os.getpid())}
        for index in range(self.processes):
            worker = _Supervised(command, env, index)
            worker.spawn()
            name = f"job-worker-{index}"
            threading.Thread(
                target=worker.watch, args=(self._stopping,), name=name, daemon=True
            ).start()
            self._workers.append(worker)

    def stop(self) -> None:
        """SIGTERM the workers and wait for them (their grace time, and a little more)."""
        self._stopping.set()
        running = [p for p in (w.terminate() for w in self._workers) if p is not None]
        deadline = time.monotonic() + self.grace + 10
        for proc in running:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("a job worker did not stop within %.0f s; killing it", self.grace + 10)
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
