"""glibc's allocator as :func:`dockyard.allocator.tune` sets it up: few arenas, and
argon2's work areas returned to the system when freed; and memory freed in the middle of
a heap handed back by :func:`dockyard.allocator.start_trimming`. Each check runs in a
fresh interpreter (the allocator's settings are the process's), once set up and once
without, which must show what the setting prevents."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from dockyard import allocator
from dockyard.iam import passwords

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's allocator, /proc"
)

_PROLOGUE = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from dockyard import allocator

    if sys.argv[1] in ("tuned", "trimming"):
        assert allocator.tune()
    if sys.argv[1] == "trimming":
        assert allocator.start_trimming(0.1)

    def resident_mib():
        status = Path("/proc/self/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) // 1024

    def on_threads(count, work):
        threads = [threading.Thread(target=work) for _ in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    """
)

_ARENAS = textwrap.dedent(
    """
    import ctypes
    start = threading.Barrier(16)

    def work():
        start.wait()
        for _ in range(200):
            objects = [bytearray(300) for _ in range(200)]
            del objects

    on_threads(16, work)
    ctypes.CDLL(None).malloc_stats()  # to stderr, one "Arena N:" line per arena
    """
)

_AFTER_LOGINS = textwrap.dedent(
    """
    from dockyard.iam import passwords

    stored = passwords.hash_password("secret")
    passwords._hasher.verify(stored, "secret")
    before = resident_mib()

    def logins():
        for _ in range(3):
            passwords._hasher.verify(stored, "secret")
            buffer = bytearray(1024 * 1024)  # as a request's I/O buffer would be
            del buffer

    on_threads(4, logins)
    print(resident_mib() - before, file=sys.stderr)
    """
)


_FREED_BELOW_LIVE = textwrap.dedent(
    """
    import ctypes, time

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    before = resident_mib()
    # 40 MiB in blocks below every mapping threshold, written so that they are resident,
    # then one small block above them that stays: freed, they are not the heap's top.
    blocks = [libc.malloc(64 * 1024) for _ in range(640)]
    for block in blocks:
        ctypes.memset(block, 1, 64 * 1024)
    live = libc.malloc(64)
    for block in blocks:
        libc.free(block)
    time.sleep(0.5)
    print(resident_mib() - before, file=sys.stderr)
    libc.free(live)
    """
)


def _run(code: str, mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROLOGUE + code, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stderr


def test_threads_share_a_few_arenas() -> None:
    tuned = _run(_ARENAS, "tuned").count("Arena ")
    untuned = _run(_ARENAS, "glibc's own").count("Arena ")
    assert 1 <= tuned <= allocator.arenas()
    assert untuned > allocator.arenas()


def test_argon2_work_areas_go_back_to_the_system() -> None:
    """12 argon2 runs on 4 threads: tuned, every work area is unmapped when freed;
    untuned, each thread's heap keeps one."""
    assert int(_run(_AFTER_LOGINS, "tuned")) < 10
    assert int(_run(_AFTER_LOGINS, "glibc's own")) >= 3 * passwords.MEMORY_COST // 1024


def test_memory_freed_below_live_allocations_goes_back_to_the_system() -> None:
    """40 MiB freed under a live allocation: with trimming, the process is its former
    size again within a trimming interval; without, the heap keeps all of it."""
    assert int(_run(_FREED_BELOW_LIVE, "trimming")) < 8
    assert int(_run(_FREED_BELOW_LIVE, "tuned")) >= 35
